/**
 * A server-sent-events parser (WHATWG HTML §9.2) over raw bytes. Lines are split on the bytes
 * CR, LF and CRLF, which never occur inside a multi-byte UTF-8 sequence, so a chunk boundary in
 * the middle of a character is harmless, and data is handed on as bytes (see event-payload.ts).
 * Leniencies llama-server needs (engines.md §1.2):
 * - `data:` with or without the space after the colon; comment lines (`: ping`) are skipped.
 * - Older builds write a failure as a bare `error: {json}` line (`server_sent_event(sink, "error", …)`),
 *   a field the spec would ignore; we turn it into an event of type 'error'.
 * - An event not closed by a blank line before the stream ends is still dispatched.
 */
export interface SseEvent {
  /** 'message' unless an `event:` field (or the `error:` quirk) named it. */
  readonly type: string;
  /** The event's data lines joined by LF, undecoded. */
  readonly data: Uint8Array;
}

const LF = 0x0a;
const CR = 0x0d;
const COLON = 0x3a;
const SPACE = 0x20;
const LF_BYTES = new Uint8Array([LF]);
const utf8 = new TextDecoder();

function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  let length = 0;
  for (const part of parts) length += part.length;
  const joined = new Uint8Array(length);
  let offset = 0;
  for (const part of parts) {
    joined.set(part, offset);
    offset += part.length;
  }
  return joined;
}

function fieldIs(field: Uint8Array, name: string): boolean {
  if (field.length !== name.length) return false;
  for (let i = 0; i < field.length; i++) if (field[i] !== name.charCodeAt(i)) return false;
  return true;
}

export class SseDecoder {
  /** The start of a line whose end has not arrived yet. */
  private carry: Uint8Array | undefined;
  /** The previous chunk ended in CR: an LF starting this one belongs to the same line break. */
  private skipLeadingLf = false;
  private dataLines: Uint8Array[] = [];
  private eventType: string | undefined;

  push(chunk: Uint8Array): SseEvent[] {
    const events: SseEvent[] = [];
    let lineStart = 0;
    if (this.skipLeadingLf) {
      this.skipLeadingLf = false;
      if (chunk[0] === LF) lineStart = 1;
    }
    for (let i = lineStart; i < chunk.length; i++) {
      const byte = chunk[i];
      if (byte !== LF && byte !== CR) continue;
      let line = chunk.subarray(lineStart, i);
      if (this.carry !== undefined) {
        line = concatBytes([this.carry, line]);
        this.carry = undefined;
      }
      this.processLine(line, events);
      if (byte === CR) {
        if (i + 1 === chunk.length) this.skipLeadingLf = true;
        else if (chunk[i + 1] === LF) i++;
      }
      lineStart = i + 1;
    }
    if (lineStart < chunk.length) {
      const rest = chunk.slice(lineStart); // a copy: the caller may reuse its buffer
      this.carry = this.carry === undefined ? rest : concatBytes([this.carry, rest]);
    }
    return events;
  }

  end(): SseEvent[] {
    const events: SseEvent[] = [];
    if (this.carry !== undefined) {
      this.processLine(this.carry, events);
      this.carry = undefined;
    }
    this.dispatch(events);
    return events;
  }

  private processLine(line: Uint8Array, events: SseEvent[]): void {
    if (line.length === 0) {
      this.dispatch(events);
      return;
    }
    if (line[0] === COLON) return;
    const colon = line.indexOf(COLON);
    const field = colon < 0 ? line : line.subarray(0, colon);
    let value = colon < 0 ? line.subarray(line.length) : line.subarray(colon + 1);
    if (value[0] === SPACE) value = value.subarray(1);
    if (fieldIs(field, 'data')) {
      this.dataLines.push(value);
    } else if (fieldIs(field, 'event')) {
      this.eventType = utf8.decode(value);
    } else if (fieldIs(field, 'error')) {
      this.dataLines.push(value);
      this.eventType = 'error';
    }
    // `id`, `retry` and unknown fields carry nothing the adapter uses.
  }

  private dispatch(events: SseEvent[]): void {
    const lines = this.dataLines;
    const type = this.eventType ?? 'message';
    this.dataLines = [];
    this.eventType = undefined;
    if (lines.length === 0) return;
    const data = lines.length === 1 ? lines[0] : concatBytes(lines.flatMap((line, at) => (at === 0 ? [line] : [LF_BYTES, line])));
    if (data !== undefined) events.push({ type, data });
  }
}

export async function* parseSseEvents(chunks: AsyncIterable<Uint8Array>): AsyncGenerator<SseEvent, void, void> {
  const decoder = new SseDecoder();
  for await (const chunk of chunks) yield* decoder.push(chunk);
  yield* decoder.end();
}
