import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sha256File } from '../../cli/model-artifacts';
import { readF32Tensor, readGgufHeader } from '../../gpu-workers/models/gguf-reader';
import { writeGguf } from '../../gpu-workers/models/gguf-writer';
import type { GgufValue } from '../../gpu-workers/models/gguf-writer';
import { syntheticLlamaName, writeSyntheticLlama } from '../../gpu-workers/models/synthetic-llama';
import type { SyntheticLlamaSpec } from '../../gpu-workers/models/synthetic-llama';

const directories: string[] = [];

function tempDir(): string {
  const directory = mkdtempSync(join(tmpdir(), 'llama-orch-gguf-'));
  directories.push(directory);
  return directory;
}

afterAll(() => {
  for (const directory of directories) rmSync(directory, { recursive: true, force: true });
});

const METADATA: ReadonlyMap<string, GgufValue> = new Map<string, GgufValue>([
  ['general.architecture', { type: 'string', value: 'llama' }],
  ['general.name', { type: 'string', value: 'round trip – ünïcode ✓' }],
  ['test.u8', { type: 'uint8', value: 255 }],
  ['test.i8', { type: 'int8', value: -128 }],
  ['test.u16', { type: 'uint16', value: 65_535 }],
  ['test.i16', { type: 'int16', value: -32_768 }],
  ['test.u32', { type: 'uint32', value: 4_294_967_295 }],
  ['test.i32', { type: 'int32', value: -2_147_483_648 }],
  ['test.f32', { type: 'float32', value: Math.fround(1e-5) }],
  ['test.f64', { type: 'float64', value: Math.PI }],
  ['test.u64', { type: 'uint64', value: 18_446_744_073_709_551_615n }],
  ['test.i64', { type: 'int64', value: -9_223_372_036_854_775_808n }],
  ['test.bool', { type: 'bool', value: true }],
  ['test.strings', { type: 'array', itemType: 'string', values: ['<unk>', '', '▁the', '🦙'] }],
  ['test.f32s', { type: 'array', itemType: 'float32', values: [0, -1.5, Math.fround(0.1)] }],
  ['test.i32s', { type: 'array', itemType: 'int32', values: [2, 3, -6] }],
  ['test.bools', { type: 'array', itemType: 'bool', values: [true, false] }],
  ['test.u64s', { type: 'array', itemType: 'uint64', values: [0n, 1n << 40n] }],
  ['test.empty', { type: 'array', itemType: 'string', values: [] }],
]);

/** Odd sizes, so every tensor but the first starts after padding. */
const TENSORS = [
  { name: 'a.weight', dims: [3, 5], values: Float32Array.from({ length: 15 }, (_, i) => i / 7) },
  { name: 'b.weight', dims: [7], values: Float32Array.from({ length: 7 }, (_, i) => -i) },
  { name: 'c.weight', dims: [2, 2, 3], values: Float32Array.from({ length: 12 }, (_, i) => i * 1e-3) },
];

describe('GGUF writer and reader', () => {
  it('round-trips typed metadata and F32 tensors through a GGUF v3 file with 32-byte aligned data', async () => {
    const path = join(tempDir(), 'round-trip.gguf');
    await writeGguf(path, {
      metadata: METADATA,
      tensors: TENSORS.map((tensor) => ({
        name: tensor.name,
        dims: tensor.dims,
        // Uneven chunks: the writer must not care how values arrive.
        data: () => [tensor.values.subarray(0, 1), tensor.values.subarray(1)],
      })),
    });

    const bytes = readFileSync(path);
    expect(bytes.subarray(0, 4).toString('latin1')).toBe('GGUF');
    expect(bytes.readUInt32LE(4)).toBe(3);

    const header = readGgufHeader(path);
    expect(header.version).toBe(3);
    expect(header.alignment).toBe(32);
    expect(header.metadata.get('general.alignment')).toEqual({ type: 'uint32', value: 32 });
    for (const [key, value] of METADATA) expect(header.metadata.get(key)).toEqual(value);
    expect(header.dataOffset % 32).toBe(0);
    expect(header.tensors.map((tensor) => [tensor.name, tensor.dims, tensor.type])).toEqual(TENSORS.map((tensor) => [tensor.name, tensor.dims, 0]));
    for (const [index, tensor] of header.tensors.entries()) {
      expect(tensor.fileOffset % 32).toBe(0);
      expect(readF32Tensor(path, tensor)).toEqual(TENSORS[index]?.values);
    }
  });

  it('rejects a tensor whose data does not match its dimensions', async () => {
    const path = join(tempDir(), 'short.gguf');
    await expect(
      writeGguf(path, { metadata: new Map(), tensors: [{ name: 'x', dims: [4], data: () => [new Float32Array(3)] }] }),
    ).rejects.toThrow('tensor x: 3 values, expected 4');
  });

  it('refuses a file that is not GGUF', () => {
    const path = join(tempDir(), 'not.gguf');
    writeFileSync(path, 'definitely not a model');
    expect(() => readGgufHeader(path)).toThrow('is not a GGUF file');
  });
});

describe('synthetic llama model', () => {
  const TINY_SPEC: SyntheticLlamaSpec = { seed: 7, embeddingLength: 16, blockCount: 2, headCount: 2, feedForwardLength: 24, contextLength: 64 };
  const TOKENS = ['<unk>', '<s>', '</s>', ...Array.from({ length: 29 }, (_, i) => `▁t${i}`)];
  const TOKENIZER: ReadonlyMap<string, GgufValue> = new Map<string, GgufValue>([
    ['tokenizer.ggml.model', { type: 'string', value: 'llama' }],
    ['tokenizer.ggml.tokens', { type: 'array', itemType: 'string', values: TOKENS }],
    ['tokenizer.ggml.scores', { type: 'array', itemType: 'float32', values: TOKENS.map((_, i) => -i) }],
    ['tokenizer.ggml.token_type', { type: 'array', itemType: 'int32', values: TOKENS.map((_, i) => (i < 3 ? 3 : 1)) }],
    ['tokenizer.ggml.bos_token_id', { type: 'uint32', value: 1 }],
    ['tokenizer.ggml.eos_token_id', { type: 'uint32', value: 2 }],
    ['tokenizer.ggml.unknown_token_id', { type: 'uint32', value: 0 }],
    ['not.a.tokenizer.key', { type: 'uint32', value: 9 }],
  ]);

  async function write(spec: SyntheticLlamaSpec): Promise<string> {
    const path = join(tempDir(), 'model.gguf');
    await writeSyntheticLlama(path, spec, TOKENIZER);
    return path;
  }

  it('is byte-identical for the same spec, and differs for another seed', async () => {
    const first = await sha256File(await write(TINY_SPEC));
    const second = await sha256File(await write(TINY_SPEC));
    const reseeded = await sha256File(await write({ ...TINY_SPEC, seed: 8 }));
    expect(second).toBe(first);
    expect(reseeded).not.toBe(first);
  });

  it('has the llama tensors, hyperparameters and the copied tokenizer', async () => {
    const path = await write(TINY_SPEC);
    const header = readGgufHeader(path);
    const dims = new Map(header.tensors.map((tensor) => [tensor.name, tensor.dims]));
    expect(header.tensors).toHaveLength(2 + 9 * TINY_SPEC.blockCount + 1);
    expect(dims.get('token_embd.weight')).toEqual([16, TOKENS.length]);
    expect(dims.get('blk.1.attn_k.weight')).toEqual([16, 16]);
    expect(dims.get('blk.1.ffn_up.weight')).toEqual([16, 24]);
    expect(dims.get('blk.1.ffn_down.weight')).toEqual([24, 16]);
    expect(dims.get('output_norm.weight')).toEqual([16]);
    expect(dims.get('output.weight')).toEqual([16, TOKENS.length]);
    expect(header.metadata.get('general.architecture')).toEqual({ type: 'string', value: 'llama' });
    expect(header.metadata.get('general.name')).toEqual({ type: 'string', value: syntheticLlamaName(TINY_SPEC) });
    expect(header.metadata.get('llama.attention.head_count_kv')).toEqual({ type: 'uint32', value: 2 });
    expect(header.metadata.get('llama.rope.dimension_count')).toEqual({ type: 'uint32', value: 8 });
    expect(header.metadata.get('tokenizer.ggml.tokens')).toEqual(TOKENIZER.get('tokenizer.ggml.tokens'));
    expect(header.metadata.has('not.a.tokenizer.key')).toBe(false);

    const norm = header.tensors.find((tensor) => tensor.name === 'blk.0.attn_norm.weight');
    const embedding = header.tensors.find((tensor) => tensor.name === 'token_embd.weight');
    if (norm === undefined || embedding === undefined) throw new Error('tensors missing');
    expect([...readF32Tensor(path, norm)]).toEqual(new Array<number>(16).fill(1));
    const weights = readF32Tensor(path, embedding);
    expect(Math.max(...weights.map((value) => Math.abs(value)))).toBeLessThanOrEqual(0.02 * Math.sqrt(3));
    expect(new Set(weights).size).toBeGreaterThan(weights.length / 2);
  });

  it('rejects a spec llama.cpp could not load', async () => {
    await expect(write({ ...TINY_SPEC, headCount: 3 })).rejects.toThrow('multiple of headCount');
  });
});
