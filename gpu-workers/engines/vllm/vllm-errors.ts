import { ErrorCode, OrchError, hasErrorCode } from '../../../core/errors';
import { ErrorBodySchema, ErrorDetailSchema } from './vllm-api-types';
import type { VllmErrorDetail } from './vllm-api-types';

/**
 * How vLLM failures become contract codes. A 400 (or an error whose code is 400: a prompt longer than
 * max_model_len, a bad field) is the request's fault: INVALID_PARAMS, not retried. Everything else — a 500
 * or an error chunk mid-stream (`EngineDeadError` when the engine core died), a broken stream, a lost
 * connection — is WORKER_RESET, which Temporal retries.
 */
const ENGINE = 'vllm';

function withCause(error: OrchError, cause: unknown): OrchError {
  if (cause !== undefined) error.cause = cause;
  return error;
}

export function workerReset(message: string, cause?: unknown): OrchError {
  return withCause(new OrchError(ErrorCode.WORKER_RESET, `vllm: ${message}`, { engine: ENGINE }), cause);
}

export function invalidParams(message: string): OrchError {
  return new OrchError(ErrorCode.INVALID_PARAMS, `vllm: ${message}`, { engine: ENGINE });
}

/** An error object vLLM sent; `httpStatus` when it came as the response's status. */
export function fromEngineError(detail: VllmErrorDetail | string, httpStatus?: number): OrchError {
  const error = typeof detail === 'string' ? { message: detail } : detail;
  const message = `${error.message ?? 'engine error'}${error.type != null ? ` (${error.type})` : ''}`;
  const refused = httpStatus !== undefined ? httpStatus === 400 : error.code === 400 || error.code === '400';
  return refused ? invalidParams(message) : workerReset(httpStatus !== undefined ? `HTTP ${httpStatus}: ${message}` : message);
}

/** A non-200 answer; its body is vLLM's error JSON when it is anything readable. */
export function fromHttpStatus(status: number, bodyText: string): OrchError {
  let parsed: unknown;
  try {
    parsed = JSON.parse(bodyText);
  } catch {
    parsed = undefined;
  }
  const body = ErrorBodySchema.safeParse(parsed);
  if (!body.success) return fromEngineError(bodyText.slice(0, 200), status);
  const detail = ErrorDetailSchema.parse('error' in body.data ? body.data['error'] : body.data);
  return fromEngineError(detail, status);
}

/** What to throw for an HTTP-client failure: the caller's abort stays an abort; the rest is a lost engine. */
export function fromTransportFailure(error: unknown, signal: AbortSignal | undefined): unknown {
  if (signal?.aborted === true) return signal.reason;
  if (hasErrorCode(error)) return error;
  const message = error instanceof Error ? `${'code' in error ? `${String(error.code)}: ` : ''}${error.message}` : String(error);
  return workerReset(`connection failed: ${message}`, error);
}
