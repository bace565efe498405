import type { StreamPart } from '../core/stream-parts';

export interface SseFrame {
  readonly id: number;
  readonly event: 'started' | 'token' | 'metrics' | 'end' | 'error';
  /** The JSON payload, serialized once. */
  readonly data: string;
}

/** The one mapping from internal parts to the public SSE events (ORCH-2002: names and payloads are frozen). */
export function toSseFrame(id: number, part: StreamPart): SseFrame {
  switch (part.type) {
    case 'started':
      return { id, event: 'started', data: JSON.stringify({ queue_position: part.queuePosition, predicted_start_ms: part.predictedStartMs }) };
    case 'token':
      return { id, event: 'token', data: JSON.stringify({ t: part.text, i: part.index }) };
    case 'metrics':
      return { id, event: 'metrics', data: JSON.stringify(part.values) };
    case 'end':
      return {
        id,
        event: 'end',
        data: JSON.stringify(part.canceled ? { tokens_out: part.tokensOut, decode_ms: part.decodeMs, canceled: true } : { tokens_out: part.tokensOut, decode_ms: part.decodeMs }),
      };
    case 'error':
      return {
        id,
        event: 'error',
        data: JSON.stringify(part.engine === undefined ? { code: part.code, message: part.message } : { code: part.code, message: part.message, engine: part.engine }),
      };
    default:
      return assertNever(part);
  }
}

/** Wire form (spec §2.7): `id:`, `event:`, `data:` lines and a blank line; ids allow Last-Event-ID resume. */
export function encodeSseFrame(frame: SseFrame): string {
  return `id: ${frame.id}\nevent: ${frame.event}\ndata: ${frame.data}\n\n`;
}

function assertNever(value: never): never {
  throw new Error(`unhandled stream part ${JSON.stringify(value)}`);
}
