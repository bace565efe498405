import { closeSync, openSync, readSync } from 'node:fs';
import { GGUF_DEFAULT_ALIGNMENT, GGUF_MAGIC, GgmlType, GgufType, tensorElementCount } from './gguf-writer';
import type { GgufBigIntType, GgufNumberType, GgufTypeName, GgufValue } from './gguf-writer';

/**
 * Reads a GGUF file's header: version, metadata and tensor infos, without loading tensor data
 * (the header of a multi-GB model is a few MB at most). Versions 2 and 3 share this layout.
 */
export interface GgufTensorInfo {
  readonly name: string;
  readonly dims: readonly number[];
  readonly type: number;
  /** Absolute position of the tensor's data in the file. */
  readonly fileOffset: number;
}

export interface GgufHeader {
  readonly version: number;
  readonly metadata: ReadonlyMap<string, GgufValue>;
  readonly tensors: readonly GgufTensorInfo[];
  readonly alignment: number;
  /** Where the (aligned) data section starts. */
  readonly dataOffset: number;
}

const TYPE_NAMES = new Map<number, GgufTypeName>(Object.entries(GgufType).map(([name, id]) => [id, name as GgufTypeName]));
const utf8 = new TextDecoder('utf-8', { fatal: true });
/** A sanity bound against a corrupt length field making us allocate gigabytes. */
const MAX_STRING_BYTES = 1 << 24;

/** Sequential little-endian reads over a file, through a buffer. */
class FileCursor {
  private readonly buffer = Buffer.alloc(1 << 16);
  private bufferStart = 0;
  private bufferLength = 0;
  position = 0;

  constructor(private readonly fd: number) {}

  private take(bytes: number): Buffer {
    const relative = this.position - this.bufferStart;
    if (relative < 0 || relative + bytes > this.bufferLength) {
      const target = bytes > this.buffer.length ? Buffer.alloc(bytes) : this.buffer;
      const read = readSync(this.fd, target, 0, target.length, this.position);
      if (read < bytes) throw new Error(`GGUF truncated at byte ${this.position}`);
      this.position += bytes;
      if (target !== this.buffer) return target.subarray(0, bytes);
      this.bufferStart = this.position - bytes;
      this.bufferLength = read;
      return this.buffer.subarray(0, bytes);
    }
    this.position += bytes;
    return this.buffer.subarray(relative, relative + bytes);
  }

  u8(): number { return this.take(1).readUInt8(0); }
  i8(): number { return this.take(1).readInt8(0); }
  u16(): number { return this.take(2).readUInt16LE(0); }
  i16(): number { return this.take(2).readInt16LE(0); }
  u32(): number { return this.take(4).readUInt32LE(0); }
  i32(): number { return this.take(4).readInt32LE(0); }
  f32(): number { return this.take(4).readFloatLE(0); }
  f64(): number { return this.take(8).readDoubleLE(0); }
  u64(): bigint { return this.take(8).readBigUInt64LE(0); }
  i64(): bigint { return this.take(8).readBigInt64LE(0); }

  /** A u64 that must fit a JS number (counts, offsets, dims). */
  size(): number {
    const value = this.u64();
    if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`GGUF size field too large: ${value}`);
    return Number(value);
  }

  string(): string {
    const length = this.size();
    if (length > MAX_STRING_BYTES) throw new Error(`GGUF string of ${length} bytes at ${this.position}`);
    return utf8.decode(this.take(length));
  }
}

function typeName(id: number): GgufTypeName {
  const name = TYPE_NAMES.get(id);
  if (name === undefined) throw new Error(`unknown GGUF value type ${id}`);
  return name;
}

function readNumber(cursor: FileCursor, type: GgufNumberType): number {
  switch (type) {
    case 'uint8': return cursor.u8();
    case 'int8': return cursor.i8();
    case 'uint16': return cursor.u16();
    case 'int16': return cursor.i16();
    case 'uint32': return cursor.u32();
    case 'int32': return cursor.i32();
    case 'float32': return cursor.f32();
    case 'float64': return cursor.f64();
  }
}

function readBigInt(cursor: FileCursor, type: GgufBigIntType): bigint {
  return type === 'uint64' ? cursor.u64() : cursor.i64();
}

function readArray(cursor: FileCursor): GgufValue {
  const itemType = typeName(cursor.u32());
  const count = cursor.size();
  // Nested arrays exist in the spec but in no model we load; reading them would need another shape.
  if (itemType === 'array') throw new Error('nested GGUF arrays are not supported');
  if (itemType === 'string') return { type: 'array', itemType, values: Array.from({ length: count }, () => cursor.string()) };
  if (itemType === 'bool') return { type: 'array', itemType, values: Array.from({ length: count }, () => cursor.u8() !== 0) };
  if (itemType === 'uint64' || itemType === 'int64') {
    return { type: 'array', itemType, values: Array.from({ length: count }, () => readBigInt(cursor, itemType)) };
  }
  return { type: 'array', itemType, values: Array.from({ length: count }, () => readNumber(cursor, itemType)) };
}

function readValue(cursor: FileCursor): GgufValue {
  const type = typeName(cursor.u32());
  if (type === 'array') return readArray(cursor);
  if (type === 'string') return { type, value: cursor.string() };
  if (type === 'bool') return { type, value: cursor.u8() !== 0 };
  if (type === 'uint64' || type === 'int64') return { type, value: readBigInt(cursor, type) };
  return { type, value: readNumber(cursor, type) };
}

export function readGgufHeader(path: string): GgufHeader {
  const fd = openSync(path, 'r');
  try {
    const cursor = new FileCursor(fd);
    if (cursor.u32() !== GGUF_MAGIC) throw new Error(`${path} is not a GGUF file`);
    const version = cursor.u32();
    if (version !== 2 && version !== 3) throw new Error(`${path}: unsupported GGUF version ${version}`);
    const tensorCount = cursor.size();
    const kvCount = cursor.size();
    const metadata = new Map<string, GgufValue>();
    for (let i = 0; i < kvCount; i++) {
      const key = cursor.string();
      metadata.set(key, readValue(cursor));
    }
    const alignmentValue = metadata.get('general.alignment');
    const alignment = alignmentValue?.type === 'uint32' ? alignmentValue.value : GGUF_DEFAULT_ALIGNMENT;
    const infos: { name: string; dims: number[]; type: number; offset: number }[] = [];
    for (let i = 0; i < tensorCount; i++) {
      const name = cursor.string();
      const dimCount = cursor.u32();
      const dims = Array.from({ length: dimCount }, () => cursor.size());
      infos.push({ name, dims, type: cursor.u32(), offset: cursor.size() });
    }
    const dataOffset = Math.ceil(cursor.position / alignment) * alignment;
    const tensors = infos.map(({ offset, ...info }) => ({ ...info, fileOffset: dataOffset + offset }));
    return { version, metadata, tensors, alignment, dataOffset };
  } finally {
    closeSync(fd);
  }
}

/** One F32 tensor's values (tests and tools; a model's weights are the engine's to load). */
export function readF32Tensor(path: string, tensor: GgufTensorInfo): Float32Array {
  if (tensor.type !== GgmlType.F32) throw new Error(`tensor ${tensor.name} is type ${tensor.type}, not F32`);
  const bytes = Buffer.alloc(tensorElementCount(tensor.dims) * 4);
  const fd = openSync(path, 'r');
  try {
    if (readSync(fd, bytes, 0, bytes.length, tensor.fileOffset) !== bytes.length) throw new Error(`tensor ${tensor.name} truncated`);
  } finally {
    closeSync(fd);
  }
  return new Float32Array(bytes.buffer, bytes.byteOffset, tensorElementCount(tensor.dims));
}
