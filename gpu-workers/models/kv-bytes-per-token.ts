import type { GgufHeader } from './gguf-reader';

/** f16 K and V, llama-server's default cache type: two bytes per element. */
const F16_BYTES = 2;

/**
 * KV cache bytes one token takes in a llama.cpp slot, from the model's GGUF metadata (ORCH-3022):
 * K and V (2) × layers × KV heads × head dimension × 2 bytes (f16). Undefined when the metadata lacks
 * the architecture's counts, so a caller reports 0 rather than a guess.
 */
export function kvBytesPerToken(header: Pick<GgufHeader, 'metadata'>): number | undefined {
  const number = (key: string): number | undefined => {
    const value = header.metadata.get(key);
    if (value === undefined || value.type === 'array' || value.type === 'string' || value.type === 'bool') return undefined;
    return Number(value.value);
  };
  const architecture = header.metadata.get('general.architecture');
  if (architecture?.type !== 'string') return undefined;
  const prefix = architecture.value;
  const layers = number(`${prefix}.block_count`);
  const heads = number(`${prefix}.attention.head_count`);
  const kvHeads = number(`${prefix}.attention.head_count_kv`) ?? heads;
  const embedding = number(`${prefix}.embedding_length`);
  const headDim = number(`${prefix}.attention.key_length`) ?? (embedding !== undefined && heads ? embedding / heads : undefined);
  if (layers === undefined || kvHeads === undefined || headDim === undefined) return undefined;
  return 2 * layers * kvHeads * headDim * F16_BYTES;
}
