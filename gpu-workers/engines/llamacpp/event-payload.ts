/**
 * Decodes one SSE data payload to JSON while keeping split characters recoverable.
 *
 * A well-formed payload is UTF-8 and parses as usual. Some llama-server builds, though, write a
 * token's raw bytes into the JSON string even when they end in half a UTF-8 character (the rest
 * follows in the next chunk). Decoding such a payload as UTF-8 would turn both halves into U+FFFD
 * for good. So a payload that is not valid UTF-8 is read as Latin-1 instead — one char per byte,
 * JSON's structure being ASCII — and its strings then hold the raw bytes, which the caller
 * reassembles across chunks (utf8-token-text.ts). Caveat: in such a payload a `\u00XX` escape
 * cannot be told from a raw byte; servers that write raw bytes do not escape non-ASCII text.
 */
export interface EventPayload {
  readonly value: unknown;
  /** True when the payload was not valid UTF-8: its strings then hold one byte per char. */
  readonly rawByteStrings: boolean;
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });
const utf8Encoder = new TextEncoder();

export function parseEventPayload(data: Uint8Array): EventPayload {
  let text: string;
  let rawByteStrings = false;
  try {
    text = strictUtf8.decode(data);
  } catch {
    // Node's 'latin1' is ISO-8859-1 byte for byte (TextDecoder's 'latin1' is windows-1252).
    text = Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('latin1');
    rawByteStrings = true;
  }
  return { value: JSON.parse(text) as unknown, rawByteStrings };
}

/** The bytes a raw-byte string stands for; a char above U+00FF (from an escape) is UTF-8 encoded. */
export function rawStringBytes(text: string): Uint8Array {
  let bytesOnly = true;
  for (let i = 0; i < text.length && bytesOnly; i++) bytesOnly = text.charCodeAt(i) <= 0xff;
  if (bytesOnly) return Buffer.from(text, 'latin1');
  const bytes: number[] = [];
  for (const char of text) {
    const codePoint = char.codePointAt(0) ?? 0;
    if (codePoint <= 0xff) bytes.push(codePoint);
    else bytes.push(...utf8Encoder.encode(char));
  }
  return Uint8Array.from(bytes);
}
