import type { FastifyReply } from 'fastify';
import { ErrorCode, ERROR_TRAITS, type OrchError } from '../core/errors';

export interface ErrorEnvelope {
  readonly code: ErrorCode;
  readonly message: string;
  readonly engine?: string | undefined;
  readonly pool_id?: string | undefined;
  readonly retriable: boolean;
  readonly retry_after_ms?: number | undefined;
  readonly policy_label?: string | undefined;
}

type TypedErrorLike = Pick<OrchError, 'code' | 'message'> & { readonly details?: OrchError['details'] };

/** The one place an error becomes an HTTP response (style rule 8): status and headers come from the code. */
export function sendError(reply: FastifyReply, error: TypedErrorLike): FastifyReply {
  return reply.code(prepareErrorReply(reply, error)).send(errorEnvelopeOf(error));
}

/** The envelope of a typed error (also written raw to a socket no route answers: api/http-limits.ts). */
export function errorEnvelopeOf(error: TypedErrorLike): ErrorEnvelope {
  const { engine, poolId, retryAfterMs, policyLabel } = error.details ?? {};
  return {
    code: error.code,
    message: error.message,
    engine,
    pool_id: poolId,
    retriable: ERROR_TRAITS[error.code].retriable,
    retry_after_ms: retryAfterMs,
    policy_label: policyLabel,
  };
}

/**
 * The same error in OpenAI's shape, for the OpenAI-compatible routes (api/openai/): the contract's code
 * rides in `code` (OpenAI's own where it has one: `context_length_exceeded`), the status and Retry-After
 * are the contract's, so clients' retry logic works unchanged.
 */
export function sendOpenAiError(reply: FastifyReply, error: TypedErrorLike): FastifyReply {
  const status = prepareErrorReply(reply, error);
  return reply.code(status).send({ error: { message: error.message, type: openAiErrorType(status), param: null, code: error.details?.openAiCode ?? error.code } });
}

/** Status and headers (WWW-Authenticate, Retry-After, X-Backoff-Ms) of a typed error. */
function prepareErrorReply(reply: FastifyReply, error: TypedErrorLike): number {
  const { retryAfterMs, notFound, tooLarge } = error.details ?? {};
  // RFC 9110: a 401 names the scheme the client should use.
  if (error.code === ErrorCode.UNAUTHENTICATED) reply.header('www-authenticate', 'Bearer realm="llama-orch"');
  if (retryAfterMs !== undefined) {
    reply.header('retry-after', String(Math.max(1, Math.floor(retryAfterMs / 1000))));
    reply.header('x-backoff-ms', String(retryAfterMs));
  }
  if (notFound) return 404;
  return tooLarge ? 413 : ERROR_TRAITS[error.code].httpStatus;
}

/** OpenAI's error `type` for a status, as its client libraries map them. */
export function openAiErrorType(status: number): string {
  if (status === 401) return 'authentication_error';
  if (status === 403) return 'permission_error';
  if (status === 404) return 'not_found_error';
  if (status === 429) return 'rate_limit_error';
  if (status >= 500) return 'server_error';
  return 'invalid_request_error';
}
