import type { FastifyBaseLogger, FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { ErrorCode, OrchError } from '../../core/errors';
import type { GatewayContext } from '../gateway-context';
import { startSessionKvEviction } from '../sessions/session-kv-eviction';
import { lookupSession } from '../sessions/session-lookup';
import type { SessionInfo } from '../sessions/session-registry';

const SessionIdParamsSchema = z.object({ id: z.uuid() });

/**
 * Sessions (spec §2.8, ORCH-2004/2005): a tenant reads and ends its own sessions only; another tenant's
 * session is answered like one that does not exist (404), so session ids leak nothing. A session this
 * gateway does not remember is looked up in Temporal visibility (another gateway served its turns).
 */
export function registerSessionRoutes(app: FastifyInstance, context: GatewayContext): void {
  app.get('/v1/sessions/:id', async (request, reply) => {
    const { tenant, sessionId } = sessionOf(context, request);
    const info = context.sessions.info(tenant, sessionId) ?? (await lookupElsewhere(context, tenant, sessionId, request.log));
    if (!info) throw unknownSession(sessionId);
    return reply.code(200).send(info);
  });

  app.delete('/v1/sessions/:id', async (request, reply) => {
    const { tenant, sessionId } = sessionOf(context, request);
    let forgotten = context.sessions.forget(tenant, sessionId);
    if (!forgotten) {
      const elsewhere = await lookupElsewhere(context, tenant, sessionId, request.log);
      if (!elsewhere) throw unknownSession(sessionId);
      context.sessions.deletedElsewhere(tenant, sessionId);
      forgotten = { replicaId: elsewhere.replica_id ?? undefined };
    }
    // ORCH-2005: force the KV out of the replica that holds it; the session is already forgotten here. The
    // eviction workflow is also the delete's record, so other gateways answer 404 for it too.
    await startSessionKvEviction(context, { tenant, sessionId, replicaId: forgotten.replicaId }, request.log);
    request.log.info({ session_id: sessionId, client_id: tenant, replica_id: forgotten.replicaId ?? null }, 'session deleted');
    return reply.code(204).send();
  });
}

async function lookupElsewhere(context: GatewayContext, tenant: string, sessionId: string, log: FastifyBaseLogger): Promise<SessionInfo | undefined> {
  if (context.sessions.wasDeleted(tenant, sessionId)) return undefined;
  const { ttl_ms: ttlMs, max_turns: maxTurns } = context.config.sessions;
  try {
    return await lookupSession(context.client, tenant, sessionId, { ttlMs, maxTurns });
  } catch (error) {
    // Visibility down or the SessionId attribute not registered on this cluster: unknown, as before.
    log.warn({ err: error, session_id: sessionId }, 'session lookup in Temporal visibility failed');
    return undefined;
  }
}

function sessionOf(context: GatewayContext, request: FastifyRequest): { tenant: string; sessionId: string } {
  const parsed = SessionIdParamsSchema.safeParse(request.params);
  if (!parsed.success) throw new OrchError(ErrorCode.INVALID_PARAMS, 'session id must be a UUID');
  return { tenant: context.auth.clientIdOf(request), sessionId: parsed.data.id };
}

function unknownSession(sessionId: string): OrchError {
  return new OrchError(ErrorCode.INVALID_PARAMS, `no session with id ${sessionId}`, { notFound: true });
}
