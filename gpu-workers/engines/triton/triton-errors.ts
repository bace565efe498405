import { ErrorCode, OrchError, hasErrorCode } from '../../../core/errors';
import { ErrorBodySchema } from './triton-api-types';

const ENGINE = 'triton';
/**
 * Triton answers 400 to an error in a stream's first response whatever its code (.specs/engines/triton.md), so
 * the status cannot tell a refused request from a broken engine. Our model says which in the message.
 */
const REFUSAL_PREFIX = 'invalid request:';

function withCause(error: OrchError, cause: unknown): OrchError {
  if (cause !== undefined) error.cause = cause;
  return error;
}

export function workerReset(message: string, cause?: unknown): OrchError {
  return withCause(new OrchError(ErrorCode.WORKER_RESET, `triton: ${message}`, { engine: ENGINE }), cause);
}

export function invalidParams(message: string, cause?: unknown): OrchError {
  return withCause(new OrchError(ErrorCode.INVALID_PARAMS, `triton: ${message}`, { engine: ENGINE }), cause);
}

/**
 * A model's error message, from a frame or a refused request: a request the model refuses (context exceeded, a
 * malformed field) is INVALID_PARAMS, not retried; anything else is WORKER_RESET, which Temporal retries.
 */
export function fromModelError(message: string): OrchError {
  return message.startsWith(REFUSAL_PREFIX) ? invalidParams(message) : workerReset(message);
}

/** A non-200 answer: `{"error":"…"}` as JSON, or as one `data:` frame when a stream failed before its first token. */
export function fromHttpStatus(status: number, bodyText: string): OrchError {
  const json = bodyText.trimStart().startsWith('data:') ? bodyText.trimStart().slice('data:'.length) : bodyText;
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    parsed = undefined;
  }
  const body = ErrorBodySchema.safeParse(parsed);
  if (!body.success) return workerReset(`HTTP ${status}: ${bodyText.slice(0, 200)}`);
  return status === 400 ? fromModelError(body.data.error) : workerReset(`HTTP ${status}: ${body.data.error}`);
}

/** An HTTP-client failure: the caller's abort stays an abort; the rest is a lost engine. */
export function fromTransportFailure(error: unknown, signal: AbortSignal | undefined): unknown {
  if (signal?.aborted === true) return signal.reason;
  if (hasErrorCode(error)) return error;
  const message = error instanceof Error ? `${'code' in error ? `${String(error.code)}: ` : ''}${error.message}` : String(error);
  return workerReset(`connection failed: ${message}`, error);
}
