import { writeGguf } from './gguf-writer';
import type { GgufTensor, GgufValue } from './gguf-writer';

/**
 * A random-weight llama-architecture model: gibberish output, but a real engine workload of any
 * size (parameters ≈ 12·L·d² + 2·V·d), for determinism, cancellation and relay tests. The same spec
 * and tokenizer always give the same bytes.
 */
export interface SyntheticLlamaSpec {
  readonly seed: number;
  readonly embeddingLength: number;
  readonly blockCount: number;
  readonly headCount: number;
  readonly feedForwardLength: number;
  readonly contextLength: number;
}

/** Bumped whenever the generator's output changes, so cached files built by an older one are not reused. */
export const SYNTHETIC_LLAMA_GENERATOR_VERSION = 1;

/** The tokenizer keys copied from a vocab-only GGUF, when present. */
export const TOKENIZER_KEYS = [
  'tokenizer.ggml.model',
  'tokenizer.ggml.pre',
  'tokenizer.ggml.tokens',
  'tokenizer.ggml.scores',
  'tokenizer.ggml.token_type',
  'tokenizer.ggml.bos_token_id',
  'tokenizer.ggml.eos_token_id',
  'tokenizer.ggml.unknown_token_id',
  'tokenizer.ggml.padding_token_id',
  'tokenizer.ggml.add_bos_token',
  'tokenizer.ggml.add_eos_token',
] as const;

/** Weights are uniform in ±0.02·√3 (standard deviation 0.02, like a fresh initialization). */
const WEIGHT_SCALE = 0.02 * Math.sqrt(3);
const RMS_EPSILON = 1e-5;
const CHUNK_VALUES = 64 * 1024;

export function syntheticLlamaName(spec: SyntheticLlamaSpec): string {
  return (
    `synthetic-llama-v${SYNTHETIC_LLAMA_GENERATOR_VERSION}-s${spec.seed}-d${spec.embeddingLength}-l${spec.blockCount}` +
    `-h${spec.headCount}-ff${spec.feedForwardLength}-c${spec.contextLength}`
  );
}

/**
 * mulberry32: 32-bit state, integer operations only. The values are then scaled with plain float
 * arithmetic (no Math.log/Math.cos, whose last bits may differ between JS engines), so the bytes
 * are the same on every machine and Node version.
 */
function createRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function* randomValues(count: number, random: () => number): Iterable<Float32Array> {
  for (let done = 0; done < count; done += CHUNK_VALUES) {
    const chunk = new Float32Array(Math.min(CHUNK_VALUES, count - done));
    for (let i = 0; i < chunk.length; i++) chunk[i] = (random() * 2 - 1) * WEIGHT_SCALE;
    yield chunk;
  }
}

function* ones(count: number): Iterable<Float32Array> {
  // Norm weights of 1 keep activations at unit scale through every block.
  yield new Float32Array(count).fill(1);
}

function validate(spec: SyntheticLlamaSpec): void {
  for (const [key, value] of Object.entries(spec)) {
    if (!Number.isSafeInteger(value) || (key !== 'seed' && value <= 0)) throw new Error(`synthetic model: ${key} must be a positive integer`);
  }
  if (spec.embeddingLength % spec.headCount !== 0) throw new Error('synthetic model: embeddingLength must be a multiple of headCount');
  if ((spec.embeddingLength / spec.headCount) % 2 !== 0) throw new Error('synthetic model: the head size must be even (RoPE)');
}

/** The tensors, in llama.cpp's order, each drawing its values from one seeded stream in turn. */
export function syntheticLlamaTensors(spec: SyntheticLlamaSpec, vocabularySize: number): GgufTensor[] {
  const random = createRandom(spec.seed);
  const d = spec.embeddingLength;
  const ff = spec.feedForwardLength;
  const matrix = (name: string, columns: number, rows: number): GgufTensor => ({
    name,
    dims: [columns, rows],
    data: () => randomValues(columns * rows, random),
  });
  const norm = (name: string): GgufTensor => ({ name, dims: [d], data: () => ones(d) });

  const tensors: GgufTensor[] = [matrix('token_embd.weight', d, vocabularySize)];
  for (let block = 0; block < spec.blockCount; block++) {
    const prefix = `blk.${block}`;
    tensors.push(
      norm(`${prefix}.attn_norm.weight`),
      matrix(`${prefix}.attn_q.weight`, d, d),
      // Keys and values have as many heads as queries (no grouped-query attention).
      matrix(`${prefix}.attn_k.weight`, d, d),
      matrix(`${prefix}.attn_v.weight`, d, d),
      matrix(`${prefix}.attn_output.weight`, d, d),
      norm(`${prefix}.ffn_norm.weight`),
      matrix(`${prefix}.ffn_gate.weight`, d, ff),
      matrix(`${prefix}.ffn_up.weight`, d, ff),
      matrix(`${prefix}.ffn_down.weight`, ff, d),
    );
  }
  tensors.push(norm('output_norm.weight'), matrix('output.weight', d, vocabularySize));
  return tensors;
}

export function syntheticLlamaMetadata(spec: SyntheticLlamaSpec, name: string, tokenizer: ReadonlyMap<string, GgufValue>): Map<string, GgufValue> {
  const u32 = (value: number): GgufValue => ({ type: 'uint32', value });
  const metadata = new Map<string, GgufValue>([
    ['general.architecture', { type: 'string', value: 'llama' }],
    ['general.name', { type: 'string', value: name }],
    ['general.alignment', u32(32)],
    ['general.file_type', u32(0)], // all F32
    ['llama.context_length', u32(spec.contextLength)],
    ['llama.embedding_length', u32(spec.embeddingLength)],
    ['llama.block_count', u32(spec.blockCount)],
    ['llama.feed_forward_length', u32(spec.feedForwardLength)],
    ['llama.attention.head_count', u32(spec.headCount)],
    ['llama.attention.head_count_kv', u32(spec.headCount)],
    ['llama.attention.layer_norm_rms_epsilon', { type: 'float32', value: RMS_EPSILON }],
    ['llama.rope.dimension_count', u32(spec.embeddingLength / spec.headCount)],
  ]);
  for (const key of TOKENIZER_KEYS) {
    const value = tokenizer.get(key);
    if (value !== undefined) metadata.set(key, value);
  }
  return metadata;
}

/** Writes the model to `path` (streaming; the caller makes it atomic). */
export async function writeSyntheticLlama(path: string, spec: SyntheticLlamaSpec, tokenizer: ReadonlyMap<string, GgufValue>): Promise<void> {
  validate(spec);
  const tokens = tokenizer.get('tokenizer.ggml.tokens');
  if (tokens?.type !== 'array' || tokens.itemType !== 'string' || tokens.values.length === 0) {
    throw new Error('synthetic model: the tokenizer has no tokenizer.ggml.tokens');
  }
  if (tokenizer.get('tokenizer.ggml.model') === undefined) throw new Error('synthetic model: the tokenizer has no tokenizer.ggml.model');
  await writeGguf(path, {
    metadata: syntheticLlamaMetadata(spec, syntheticLlamaName(spec), tokenizer),
    tensors: syntheticLlamaTensors(spec, tokens.values.length),
  });
}
