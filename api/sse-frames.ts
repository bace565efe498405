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

/**
 * Frame ids are stream positions, not frame counts, so that they mean the same on every gateway and in a
 * stream rebuilt from the workflow's durable result (which keeps the tokens, not the metrics frames):
 * `started` is 0, token i is i + 1, the terminal frame is tokens + 1, and a `metrics` frame carries the id
 * of the frame before it. `Last-Event-ID` therefore resumes at the same token wherever the stream is read
 * again (a restarted gateway, another one); a resume can skip a metrics frame, never a token.
 */
export class FramePositions {
  private last = 0;
  private tokens = 0;

  idOf(part: StreamPart): number {
    switch (part.type) {
      case 'started':
        this.last = 0;
        break;
      case 'token':
        this.tokens = part.index + 1;
        this.last = this.tokens;
        break;
      case 'metrics':
        break;
      case 'end':
      case 'error':
        this.last = this.tokens + 1;
        break;
      default:
        return assertNever(part);
    }
    return this.last;
  }
}

/** Wire form (spec §2.7): `id:`, `event:`, `data:` lines and a blank line; ids allow Last-Event-ID resume. */
export function encodeSseFrame(frame: SseFrame): string {
  return `id: ${frame.id}\nevent: ${frame.event}\ndata: ${frame.data}\n\n`;
}

function assertNever(value: never): never {
  throw new Error(`unhandled stream part ${JSON.stringify(value)}`);
}
