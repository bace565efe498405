import { ErrorCode, OrchError, hasErrorCode } from '../../../core/errors';
import { TgiErrorResponseSchema } from './tgi-api-types';
import type { TgiErrorResponse } from './tgi-api-types';

/**
 * How TGI failures become contract codes. A refusal of the request itself — `error_type: validation` (422), or a
 * body TGI's HTTP layer could not read (400, 415, 422 in plain text) — is INVALID_PARAMS, not retried. Everything
 * else is WORKER_RESET, which Temporal retries: `overloaded` (429; the semaphore of `max_concurrent_requests` was
 * full, e.g. another client shares the server), `generation` (424), an incomplete stream (500), a lost connection.
 */
const ENGINE = 'tgi';

function withCause(error: OrchError, cause: unknown): OrchError {
  if (cause !== undefined) error.cause = cause;
  return error;
}

export function workerReset(message: string, cause?: unknown): OrchError {
  return withCause(new OrchError(ErrorCode.WORKER_RESET, `tgi: ${message}`, { engine: ENGINE }), cause);
}

export function invalidParams(message: string): OrchError {
  return new OrchError(ErrorCode.INVALID_PARAMS, `tgi: ${message}`, { engine: ENGINE });
}

/** An `ErrorResponse`, sent as the body of a failed request or as an event of a started stream. */
export function fromErrorResponse(error: TgiErrorResponse, httpStatus?: number): OrchError {
  const message = `${error.error}${error.error_type != null ? ` (${error.error_type})` : ''}`;
  if (error.error_type === 'validation') return invalidParams(message);
  return workerReset(httpStatus !== undefined ? `HTTP ${httpStatus}: ${message}` : message);
}

/** A non-200 answer: TGI's JSON `ErrorResponse`, or axum's plain-text rejection of an unreadable body. */
export function fromHttpStatus(status: number, bodyText: string): OrchError {
  let parsed: unknown;
  try {
    parsed = JSON.parse(bodyText);
  } catch {
    parsed = undefined;
  }
  const envelope = TgiErrorResponseSchema.safeParse(parsed);
  if (envelope.success) return fromErrorResponse(envelope.data, status);
  const detail = bodyText.slice(0, 200);
  if (status === 400 || status === 415 || status === 422) return invalidParams(`HTTP ${status}: ${detail}`);
  return workerReset(`HTTP ${status}: ${detail}`);
}

/** What to throw for an HTTP-client failure: the caller's abort stays an abort; the rest is a lost engine. */
export function fromTransportFailure(error: unknown, signal: AbortSignal | undefined): unknown {
  if (signal?.aborted === true) return signal.reason;
  if (hasErrorCode(error)) return error;
  const message = error instanceof Error ? `${'code' in error ? `${String(error.code)}: ` : ''}${error.message}` : String(error);
  return workerReset(`connection failed: ${message}`, error);
}
