import type { FastifyInstance } from 'fastify';
import { temporal } from '@temporalio/proto';
import { z } from 'zod';
import { ErrorCode, OrchError } from '../../core/errors';
import { parseReplicaIdentity } from '../../core/ids';
import { poolTaskQueue } from '../../core/task-queues';
import type { GatewayContext } from '../gateway-context';

const ParamsSchema = z.object({ id: z.string().min(1).max(128) });

/**
 * Pool health (ORCH-2103). A replica polls its pool's task queue only while Ready, so the queue's
 * live pollers are the Ready replicas; each poller's identity carries its replica id, engine version
 * and whether it runs the mock engine.
 */
export function registerPoolRoutes(app: FastifyInstance, context: GatewayContext): void {
  app.get('/v1/pools/:id/health', async (request, reply) => {
    const { id } = ParamsSchema.parse(request.params);
    const pool = context.config.pools.find((candidate) => candidate.id === id);
    if (!pool) throw new OrchError(ErrorCode.INVALID_PARAMS, `no pool with id ${id}`, { notFound: true });
    const description = await context.client.workflowService.describeTaskQueue({
      namespace: context.client.options.namespace,
      taskQueue: { name: poolTaskQueue(id), kind: temporal.api.enums.v1.TaskQueueKind.TASK_QUEUE_KIND_NORMAL },
      taskQueueType: temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
      reportStats: true,
    });
    const replicas = (description.pollers ?? []).flatMap((poller) => {
      const identity = parseReplicaIdentity(poller.identity ?? '');
      return identity ? [{ replica_id: identity.replicaId, engine_version: identity.engineVersion, mock_engine: identity.mockEngine }] : [];
    });
    const mockEngine = replicas.some((replica) => replica.mock_engine);
    const ready = replicas.length > 0;
    return reply.send({
      live: ready,
      ready,
      draining: false,
      last_error: ready ? null : 'no replica is polling the pool queue',
      metrics: {
        replicas_ready: replicas.length,
        replicas,
        backlog: Number(description.stats?.approximateBacklogCount ?? 0),
        ...(mockEngine ? { mock_engine: true, warning: 'this pool is served by the MOCK engine, a test double' } : {}),
      },
    });
  });
}
