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

/** The one place an error becomes an HTTP response (style rule 8): status and headers come from the code. */
export function sendError(reply: FastifyReply, error: Pick<OrchError, 'code' | 'message'> & { readonly details?: OrchError['details'] }): FastifyReply {
  const traits = ERROR_TRAITS[error.code];
  const { engine, poolId, retryAfterMs, policyLabel, notFound } = error.details ?? {};
  const envelope: ErrorEnvelope = {
    code: error.code,
    message: error.message,
    engine,
    pool_id: poolId,
    retriable: traits.retriable,
    retry_after_ms: retryAfterMs,
    policy_label: policyLabel,
  };
  // RFC 9110: a 401 names the scheme the client should use.
  if (error.code === ErrorCode.UNAUTHENTICATED) reply.header('www-authenticate', 'Bearer realm="llama-orch"');
  if (retryAfterMs !== undefined) {
    reply.header('retry-after', String(Math.max(1, Math.floor(retryAfterMs / 1000))));
    reply.header('x-backoff-ms', String(retryAfterMs));
  }
  return reply.code(notFound ? 404 : traits.httpStatus).send(envelope);
}
