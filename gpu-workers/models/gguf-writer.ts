import { open } from 'node:fs/promises';
import { endianness } from 'node:os';

/**
 * GGUF v3, the subset this project writes: typed metadata (scalars and arrays of scalars) and F32
 * tensors. Layout: magic "GGUF", u32 version, u64 tensor_count, u64 kv_count, the KVs, the tensor
 * infos (name, n_dims, dims innermost first, u32 type, u64 offset into the data section), padding
 * to `general.alignment`, then each tensor's data at its (aligned) offset. All little-endian.
 */
export const GGUF_MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
export const GGUF_VERSION = 3;
export const GGUF_DEFAULT_ALIGNMENT = 32;

/** Metadata value type ids, as in ggml's `gguf_type`. */
export const GgufType = {
  uint8: 0,
  int8: 1,
  uint16: 2,
  int16: 3,
  uint32: 4,
  int32: 5,
  float32: 6,
  bool: 7,
  string: 8,
  array: 9,
  uint64: 10,
  int64: 11,
  float64: 12,
} as const;
export type GgufTypeName = keyof typeof GgufType;

export type GgufNumberType = 'uint8' | 'int8' | 'uint16' | 'int16' | 'uint32' | 'int32' | 'float32' | 'float64';
export type GgufBigIntType = 'uint64' | 'int64';
export type GgufScalarType = GgufNumberType | GgufBigIntType | 'bool' | 'string';

export type GgufValue =
  | { readonly type: GgufNumberType; readonly value: number }
  | { readonly type: GgufBigIntType; readonly value: bigint }
  | { readonly type: 'bool'; readonly value: boolean }
  | { readonly type: 'string'; readonly value: string }
  | { readonly type: 'array'; readonly itemType: GgufNumberType; readonly values: readonly number[] }
  | { readonly type: 'array'; readonly itemType: GgufBigIntType; readonly values: readonly bigint[] }
  | { readonly type: 'array'; readonly itemType: 'bool'; readonly values: readonly boolean[] }
  | { readonly type: 'array'; readonly itemType: 'string'; readonly values: readonly string[] };

/** ggml tensor type ids; F32 is all we generate (no quantizer needed). */
export const GgmlType = { F32: 0, F16: 1 } as const;

export interface GgufTensor {
  readonly name: string;
  /** ggml order: ne[0] (the contiguous dimension) first. */
  readonly dims: readonly number[];
  /** Produces the tensor's values in order, in chunks of any size; called once, while writing. */
  readonly data: () => Iterable<Float32Array>;
}

export interface GgufFile {
  /** Written in this order; `general.alignment` is added when absent, since the writer aligns to it. */
  readonly metadata: ReadonlyMap<string, GgufValue>;
  readonly tensors: readonly GgufTensor[];
}

const utf8 = new TextEncoder();
/** Data is written in buffers of about this size, so memory use does not grow with the model. */
const WRITE_CHUNK_BYTES = 1 << 20;

export function tensorElementCount(dims: readonly number[]): number {
  return dims.reduce((product, dim) => product * dim, 1);
}

function alignUp(offset: number, alignment: number): number {
  return Math.ceil(offset / alignment) * alignment;
}

/** Grows as needed; little-endian writes of every GGUF field type. */
class ByteBuilder {
  private buffer = Buffer.alloc(64 * 1024);
  length = 0;

  private reserve(bytes: number): number {
    if (this.length + bytes > this.buffer.length) {
      const grown = Buffer.alloc(Math.max(this.buffer.length * 2, this.length + bytes));
      this.buffer.copy(grown, 0, 0, this.length);
      this.buffer = grown;
    }
    const at = this.length;
    this.length += bytes;
    return at;
  }

  // Reserve before touching `this.buffer`: reserving may replace it.
  u8(value: number): void { const at = this.reserve(1); this.buffer.writeUInt8(value, at); }
  i8(value: number): void { const at = this.reserve(1); this.buffer.writeInt8(value, at); }
  u16(value: number): void { const at = this.reserve(2); this.buffer.writeUInt16LE(value, at); }
  i16(value: number): void { const at = this.reserve(2); this.buffer.writeInt16LE(value, at); }
  u32(value: number): void { const at = this.reserve(4); this.buffer.writeUInt32LE(value, at); }
  i32(value: number): void { const at = this.reserve(4); this.buffer.writeInt32LE(value, at); }
  f32(value: number): void { const at = this.reserve(4); this.buffer.writeFloatLE(value, at); }
  f64(value: number): void { const at = this.reserve(8); this.buffer.writeDoubleLE(value, at); }
  u64(value: bigint | number): void { const at = this.reserve(8); this.buffer.writeBigUInt64LE(BigInt(value), at); }
  i64(value: bigint): void { const at = this.reserve(8); this.buffer.writeBigInt64LE(value, at); }
  zeros(count: number): void { const at = this.reserve(count); this.buffer.fill(0, at, this.length); }

  string(value: string): void {
    const bytes = utf8.encode(value);
    this.u64(bytes.length);
    const at = this.reserve(bytes.length);
    this.buffer.set(bytes, at);
  }

  bytes(): Buffer {
    return this.buffer.subarray(0, this.length);
  }
}

function writeScalar(out: ByteBuilder, type: GgufScalarType, value: number | bigint | boolean | string): void {
  switch (type) {
    case 'uint8': return out.u8(value as number);
    case 'int8': return out.i8(value as number);
    case 'uint16': return out.u16(value as number);
    case 'int16': return out.i16(value as number);
    case 'uint32': return out.u32(value as number);
    case 'int32': return out.i32(value as number);
    case 'float32': return out.f32(value as number);
    case 'float64': return out.f64(value as number);
    case 'uint64': return out.u64(value as bigint);
    case 'int64': return out.i64(value as bigint);
    case 'bool': return out.u8(value === true ? 1 : 0);
    case 'string': return out.string(value as string);
  }
}

function writeValue(out: ByteBuilder, value: GgufValue): void {
  out.u32(GgufType[value.type]);
  if (value.type !== 'array') return writeScalar(out, value.type, value.value);
  out.u32(GgufType[value.itemType]);
  out.u64(value.values.length);
  for (const item of value.values) writeScalar(out, value.itemType, item);
}

function alignmentOf(metadata: ReadonlyMap<string, GgufValue>): number {
  const declared = metadata.get('general.alignment');
  if (declared === undefined) return GGUF_DEFAULT_ALIGNMENT;
  if (declared.type !== 'uint32' || declared.value <= 0 || declared.value % 8 !== 0) {
    throw new Error('general.alignment must be a uint32 multiple of 8');
  }
  return declared.value;
}

/** Header, KVs and tensor infos, padded so the data section starts aligned. */
export function encodeGgufHeader(file: GgufFile): { header: Buffer; tensorOffsets: readonly number[]; alignment: number } {
  const alignment = alignmentOf(file.metadata);
  const metadata = new Map(file.metadata);
  if (!metadata.has('general.alignment')) metadata.set('general.alignment', { type: 'uint32', value: alignment });

  const out = new ByteBuilder();
  out.u32(GGUF_MAGIC);
  out.u32(GGUF_VERSION);
  out.u64(file.tensors.length);
  out.u64(metadata.size);
  for (const [key, value] of metadata) {
    out.string(key);
    writeValue(out, value);
  }
  const tensorOffsets: number[] = [];
  let offset = 0;
  for (const tensor of file.tensors) {
    out.string(tensor.name);
    out.u32(tensor.dims.length);
    for (const dim of tensor.dims) out.u64(dim);
    out.u32(GgmlType.F32);
    out.u64(offset);
    tensorOffsets.push(offset);
    offset = alignUp(offset + tensorElementCount(tensor.dims) * 4, alignment);
  }
  out.zeros(alignUp(out.length, alignment) - out.length);
  return { header: out.bytes(), tensorOffsets, alignment };
}

/**
 * Writes a GGUF file to `path`, streaming the tensor data: the heap holds the header and one write
 * buffer, never a whole tensor, so a multi-hundred-MB model needs no more memory than a tiny one.
 */
export async function writeGguf(path: string, file: GgufFile): Promise<void> {
  // The bytes of a Float32Array are copied as they are; GGUF is little-endian.
  if (endianness() !== 'LE') throw new Error('writeGguf needs a little-endian host');
  const { header, alignment } = encodeGgufHeader(file);
  const handle = await open(path, 'w');
  try {
    await handle.write(header);
    const pending = Buffer.alloc(WRITE_CHUNK_BYTES);
    let filled = 0;
    const flush = async (): Promise<void> => {
      if (filled > 0) await handle.write(pending, 0, filled);
      filled = 0;
    };
    const push = async (bytes: Uint8Array): Promise<void> => {
      let at = 0;
      while (at < bytes.length) {
        const take = Math.min(bytes.length - at, pending.length - filled);
        pending.set(bytes.subarray(at, at + take), filled);
        filled += take;
        at += take;
        if (filled === pending.length) await flush();
      }
    };
    let written = 0;
    for (const tensor of file.tensors) {
      const expected = tensorElementCount(tensor.dims);
      let count = 0;
      for (const chunk of tensor.data()) {
        count += chunk.length;
        if (count > expected) throw new Error(`tensor ${tensor.name}: more than ${expected} values`);
        await push(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
      }
      if (count !== expected) throw new Error(`tensor ${tensor.name}: ${count} values, expected ${expected}`);
      written += expected * 4;
      const padding = alignUp(written, alignment) - written;
      await push(new Uint8Array(padding));
      written += padding;
    }
    await flush();
  } finally {
    await handle.close();
  }
}
