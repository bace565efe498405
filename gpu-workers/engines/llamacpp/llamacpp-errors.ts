import { ErrorCode, OrchError, hasErrorCode } from '../../../core/errors';
import { ErrorEnvelopeSchema } from './llamacpp-api-types';
import type { EngineError } from './llamacpp-api-types';

/**
 * How llama-server failures become contract codes. A 400 is the request's fault (context exceeded,
 * a bad field): INVALID_PARAMS, not retried. Every other failure — another status, an error event,
 * a broken or truncated stream, a lost connection — is WORKER_RESET, which Temporal retries.
 */
const ENGINE = 'llamacpp';
/** Error types llama-server uses for a request it refuses, when a mid-stream error has no code. */
const REQUEST_ERROR_TYPES: ReadonlySet<string> = new Set(['invalid_request_error', 'exceed_context_size_error']);

function withCause(error: OrchError, cause: unknown): OrchError {
  if (cause !== undefined) error.cause = cause;
  return error;
}

export function workerReset(message: string, cause?: unknown): OrchError {
  return withCause(new OrchError(ErrorCode.WORKER_RESET, `llama.cpp: ${message}`, { engine: ENGINE }), cause);
}

export function invalidParams(message: string, cause?: unknown): OrchError {
  return withCause(new OrchError(ErrorCode.INVALID_PARAMS, `llama.cpp: ${message}`, { engine: ENGINE }), cause);
}

/** An error object llama-server sent; `httpStatus` when it came as a response status. */
export function fromEngineError(error: EngineError | string | null | undefined, httpStatus?: number): OrchError {
  const detail = typeof error === 'string' ? { message: error } : (error ?? {});
  const message = `${detail.message ?? 'engine error'}${detail.type != null ? ` (${detail.type})` : ''}`;
  const refused =
    httpStatus !== undefined
      ? httpStatus === 400
      : detail.code === 400 || (detail.type != null && REQUEST_ERROR_TYPES.has(detail.type));
  return refused ? invalidParams(message) : workerReset(httpStatus !== undefined ? `HTTP ${httpStatus}: ${message}` : message);
}

/** A non-200 response; the body is llama-server's `{"error":{…}}` when it is anything readable. */
export function fromHttpStatus(status: number, bodyText: string): OrchError {
  let parsed: unknown;
  try {
    parsed = JSON.parse(bodyText);
  } catch {
    parsed = undefined;
  }
  const envelope = ErrorEnvelopeSchema.safeParse(parsed);
  return fromEngineError(envelope.success ? envelope.data.error : bodyText.slice(0, 200), status);
}

/** What to throw for an HTTP-client failure: the caller's abort stays an abort; the rest is a lost engine. */
export function fromTransportFailure(error: unknown, signal: AbortSignal | undefined): unknown {
  if (signal?.aborted === true) return signal.reason;
  if (hasErrorCode(error)) return error;
  const message = error instanceof Error ? `${'code' in error ? `${String(error.code)}: ` : ''}${error.message}` : String(error);
  return workerReset(`connection failed: ${message}`, error);
}
