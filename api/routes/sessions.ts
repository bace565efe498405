import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { ErrorCode, OrchError } from '../../core/errors';
import type { GatewayContext } from '../gateway-context';
import { startSessionKvEviction } from '../sessions/session-kv-eviction';

const SessionIdParamsSchema = z.object({ id: z.uuid() });

/**
 * Sessions (spec §2.8, ORCH-2004/2005): a tenant reads and ends its own sessions only; another tenant's
 * session is answered like one that does not exist (404), so session ids leak nothing.
 */
export function registerSessionRoutes(app: FastifyInstance, context: GatewayContext): void {
  app.get('/v1/sessions/:id', async (request, reply) => {
    const { tenant, sessionId } = sessionOf(context, request);
    const info = context.sessions.info(tenant, sessionId);
    if (!info) throw unknownSession(sessionId);
    return reply.code(200).send(info);
  });

  app.delete('/v1/sessions/:id', async (request, reply) => {
    const { tenant, sessionId } = sessionOf(context, request);
    const forgotten = context.sessions.forget(tenant, sessionId);
    if (!forgotten) throw unknownSession(sessionId);
    // ORCH-2005: force the KV out of the replica that holds it; the session is already forgotten here.
    if (forgotten.replicaId !== undefined) await startSessionKvEviction(context, { tenant, sessionId, replicaId: forgotten.replicaId }, request.log);
    request.log.info({ session_id: sessionId, client_id: tenant, replica_id: forgotten.replicaId ?? null }, 'session deleted');
    return reply.code(204).send();
  });
}

function sessionOf(context: GatewayContext, request: FastifyRequest): { tenant: string; sessionId: string } {
  const parsed = SessionIdParamsSchema.safeParse(request.params);
  if (!parsed.success) throw new OrchError(ErrorCode.INVALID_PARAMS, 'session id must be a UUID');
  return { tenant: context.auth.clientIdOf(request), sessionId: parsed.data.id };
}

function unknownSession(sessionId: string): OrchError {
  return new OrchError(ErrorCode.INVALID_PARAMS, `no session with id ${sessionId}`, { notFound: true });
}
