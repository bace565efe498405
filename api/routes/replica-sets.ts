import type { FastifyInstance } from 'fastify';
import type { GatewayContext } from '../gateway-context';
import { groupReplicaSets } from '../replica-sets';

/** GET /v1/replicasets (ORCH-2104, OC-CTRL-2004): read from the background replica directory, never Temporal. */
export function registerReplicaSetRoutes(app: FastifyInstance, context: GatewayContext): void {
  app.get('/v1/replicasets', async (_request, reply) => {
    const statuses = context.config.pools.flatMap((pool) => context.replicas.replicas(pool.id));
    const now = performance.now();
    return reply.send(groupReplicaSets(statuses, (poolId) => context.slo.poolSnapshot(poolId, now)));
  });
}
