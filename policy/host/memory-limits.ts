/**
 * Caps the linear memory of a core WebAssembly module by rewriting `limits.max` of every memory it
 * defines (OC-POLICY-4011). V8's worker `resourceLimits` do not cover ArrayBuffers, so wasm memory
 * needs its own bound: with `max` set, `memory.grow` past it returns -1 and the guest traps or
 * gives up, instead of taking the host's memory. Imported memories are left alone; their owner is
 * one of the rewritten modules.
 */

export const WASM_PAGE_BYTES = 64 * 1024;

const SECTION_MEMORY = 5;
const LIMITS_HAS_MAX = 0x01;
const LIMITS_SHARED = 0x02;
const LIMITS_KNOWN_FLAGS = LIMITS_HAS_MAX | LIMITS_SHARED;

export class MemoryLimitError extends Error {
  override readonly name = 'MemoryLimitError';
}

function readUleb(bytes: Uint8Array, start: number): { value: number; next: number } {
  let value = 0;
  let shift = 0;
  let offset = start;
  for (;;) {
    const byte = bytes[offset];
    if (byte === undefined) throw new MemoryLimitError('truncated LEB128 in module');
    offset += 1;
    value += (byte & 0x7f) * 2 ** shift;
    if ((byte & 0x80) === 0) return { value, next: offset };
    shift += 7;
    if (shift > 35) throw new MemoryLimitError('LEB128 too long in module');
  }
}

function writeUleb(value: number, out: number[]): void {
  let rest = value;
  do {
    let byte = rest % 128;
    rest = Math.floor(rest / 128);
    if (rest !== 0) byte |= 0x80;
    out.push(byte);
  } while (rest !== 0);
}

export interface MemoryRewrite {
  readonly bytes: Uint8Array;
  /** Memories the module defines (each now capped). */
  readonly definedMemories: number;
}

/** Returns a copy of `module` whose defined memories may grow to at most `maxPages` each. */
export function capMemoryPages(module: Uint8Array, maxPages: number): MemoryRewrite {
  if (module.length < 8 || module[0] !== 0x00 || module[1] !== 0x61 || module[2] !== 0x73 || module[3] !== 0x6d) {
    throw new MemoryLimitError('not a WebAssembly module');
  }
  if (module[4] !== 0x01) throw new MemoryLimitError('not a core module (a component was given where a core module belongs)');
  // Untouched sections are copied as views; only the memory section is re-encoded.
  const parts: Uint8Array[] = [module.subarray(0, 8)];
  let definedMemories = 0;
  let offset = 8;
  while (offset < module.length) {
    const id = module[offset];
    const size = readUleb(module, offset + 1);
    const contentStart = size.next;
    const contentEnd = contentStart + size.value;
    if (contentEnd > module.length) throw new MemoryLimitError('section runs past the end of the module');
    if (id !== SECTION_MEMORY) {
      parts.push(module.subarray(offset, contentEnd));
      offset = contentEnd;
      continue;
    }
    const content: number[] = [];
    const count = readUleb(module, contentStart);
    writeUleb(count.value, content);
    let cursor = count.next;
    for (let index = 0; index < count.value; index += 1) {
      const flags = module[cursor];
      if (flags === undefined || (flags & ~LIMITS_KNOWN_FLAGS) !== 0) {
        throw new MemoryLimitError(`unsupported memory flags ${String(flags)} (memory64 and custom page sizes are refused)`);
      }
      const min = readUleb(module, cursor + 1);
      cursor = min.next;
      let max = maxPages;
      if ((flags & LIMITS_HAS_MAX) !== 0) {
        const declared = readUleb(module, cursor);
        cursor = declared.next;
        max = Math.min(max, declared.value);
      }
      if (min.value > maxPages) {
        throw new MemoryLimitError(
          `the module needs ${min.value * 64} KiB of memory at start, over the limit of ${maxPages * 64} KiB`,
        );
      }
      content.push(flags | LIMITS_HAS_MAX);
      writeUleb(min.value, content);
      writeUleb(max, content);
      definedMemories += 1;
    }
    if (cursor !== contentEnd) throw new MemoryLimitError('memory section has trailing bytes');
    const header: number[] = [SECTION_MEMORY];
    writeUleb(content.length, header);
    parts.push(Uint8Array.from([...header, ...content]));
    offset = contentEnd;
  }
  return { bytes: new Uint8Array(Buffer.concat(parts)), definedMemories };
}

/** Pages for a byte budget, rounded down (a budget under one page allows none to grow). */
export function pagesForBytes(bytes: number): number {
  return Math.floor(bytes / WASM_PAGE_BYTES);
}
