/**
 * Normalizes streamed token text so that no token carries half a character (ORCH-3058).
 *
 * llama-server streams each token's text as soon as it is sampled. One character can span tokens
 * (emoji, CJK, byte-fallback vocabularies), and builds that do not hold the bytes back split it
 * across chunks. We keep an incomplete UTF-8 tail and prepend it to the next chunk's bytes, so the
 * whole character goes out with the later token; a chunk left with no complete character yields
 * no token at all. Bytes that can never form a character (invalid in the middle) become U+FFFD, as
 * any UTF-8 decoder does. A tail the stream never completes is dropped at the end and reported.
 */
const utf8Decoder = new TextDecoder('utf-8');
const utf8Encoder = new TextEncoder();

/** How many bytes at the end of `bytes` form the start of a character whose rest is missing. */
export function incompleteUtf8TailLength(bytes: Uint8Array): number {
  const end = bytes.length;
  for (let back = 1; back <= 3 && back <= end; back++) {
    const byte = bytes[end - back] ?? 0;
    if ((byte & 0xc0) === 0x80) continue; // a continuation byte: the lead byte is further back
    const sequenceLength = byte >= 0xf0 && byte < 0xf8 ? 4 : byte >= 0xe0 && byte < 0xf0 ? 3 : byte >= 0xc0 && byte < 0xe0 ? 2 : 1;
    return sequenceLength > back ? back : 0;
  }
  return 0;
}

export class Utf8TokenText {
  private pending: Uint8Array | undefined;

  /** Text from a payload that decoded as valid UTF-8: passed through unless bytes are pending. */
  pushText(text: string): string {
    if (this.pending === undefined) return text;
    return this.pushBytes(utf8Encoder.encode(text));
  }

  pushBytes(bytes: Uint8Array): string {
    let all = bytes;
    if (this.pending !== undefined) {
      all = new Uint8Array(this.pending.length + bytes.length);
      all.set(this.pending, 0);
      all.set(bytes, this.pending.length);
    }
    const tail = incompleteUtf8TailLength(all);
    this.pending = tail > 0 ? all.slice(all.length - tail) : undefined;
    return utf8Decoder.decode(all.subarray(0, all.length - tail));
  }

  /** Ends the stream; returns how many bytes of an unfinished character were dropped. */
  end(): number {
    const dropped = this.pending?.length ?? 0;
    this.pending = undefined;
    return dropped;
  }
}
