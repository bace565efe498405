import type { FastifyInstance } from 'fastify';
import { temporal } from '@temporalio/proto';
import { z } from 'zod';
import { ErrorCode, OrchError } from '../../core/errors';
import { ADAPTER_UNVERIFIED } from '../../core/engines';
import { parseReplicaIdentity } from '../../core/ids';
import { replicaId } from '../../core/replica-status';
import type { PoolState } from '../../core/pool-state';
import type { ReplicaStatus } from '../../core/replica-status';
import { poolTaskQueue } from '../../core/task-queues';
import type { GatewayContext } from '../gateway-context';
import { queryReplicaStatus } from '../replica-directory';

const ParamsSchema = z.object({ id: z.string().min(1).max(128) });

interface ReplicaHealth {
  readonly replica_id: string;
  readonly state: string;
  readonly polling: boolean;
  readonly engine_version: string | null;
  readonly model_digest: string | null;
  /** The model this replica serves or loads now: during a canary reload (ORCH-3033) replicas differ. */
  readonly model_ref: string | null;
  readonly last_error: ReplicaStatus['last_error'];
  readonly restarts: number;
  readonly breaker_open: boolean;
  readonly cpu_inference_override?: true;
  readonly mock_engine?: true;
  /** ORCH-3046: Ready on its lane only, because another replica set serves the pool queue (docs/pool-lifecycle.md). */
  readonly pool_queue_standby?: true;
}


/**
 * Pool health (ORCH-2103, OC-POOL-3003): each replica's status record (its state, last error cause,
 * engine_version, model_digest, restarts, breaker) merged with the pool queue's pollers. A replica
 * polls only while Ready, but a poller without a record (a record not yet readable, or a worker that is
 * not ours) is not counted Ready: it shows as `starting` until its record says more (issue 13). A record
 * wins over the poller list, since Temporal lists a dead poller for a minute.
 */
export function registerPoolRoutes(app: FastifyInstance, context: GatewayContext): void {
  app.get('/v1/pools/:id/health', async (request, reply) => {
    const { id } = ParamsSchema.parse(request.params);
    const pool = context.config.pools.find((candidate) => candidate.id === id);
    if (!pool) throw new OrchError(ErrorCode.INVALID_PARAMS, `no pool with id ${id}`, { notFound: true });
    const configuredIds = Array.from({ length: pool.replicas }, (_unused, index) => replicaId(pool.id, index));
    const [description, ...records] = await Promise.all([
      context.client.workflowService.describeTaskQueue({
        namespace: context.client.options.namespace,
        taskQueue: { name: poolTaskQueue(id), kind: temporal.api.enums.v1.TaskQueueKind.TASK_QUEUE_KIND_NORMAL },
        taskQueueType: temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
        reportStats: true,
      }),
      ...configuredIds.map((replica) => queryReplicaStatus(context.client, pool.id, replica)),
    ]);
    const pollers = new Map(
      (description.pollers ?? []).flatMap((poller) => {
        const identity = parseReplicaIdentity(poller.identity ?? '');
        return identity ? [[identity.replicaId, identity] as const] : [];
      }),
    );
    const statusById = new Map(records.flatMap((record) => (record ? [[record.replica_id, record] as const] : [])));
    const replicaIds = [...new Set([...configuredIds, ...pollers.keys()])];
    const replicas: ReplicaHealth[] = replicaIds.flatMap((replica) => {
      const status = statusById.get(replica);
      const poller = pollers.get(replica);
      if (!status && !poller) return [];
      const mockEngine = status?.mock_engine ?? poller?.mockEngine ?? false;
      return [{
        replica_id: replica,
        state: status?.state ?? 'starting',
        polling: poller !== undefined,
        engine_version: status?.engine_version ?? poller?.engineVersion ?? null,
        model_digest: status?.model_digest ?? null,
        model_ref: status?.model_ref ?? null,
        last_error: status?.last_error ?? null,
        restarts: status?.restarts ?? 0,
        breaker_open: status?.breaker_open ?? false,
        ...(status?.cpu_inference_override === true ? { cpu_inference_override: true as const } : {}),
        ...(mockEngine ? { mock_engine: true as const } : {}),
        ...(status?.pool_queue_standby === true ? { pool_queue_standby: true as const } : {}),
      }];
    });
    const ready = replicas.filter((replica) => replica.state === 'ready');
    const live = replicas.filter((replica) => replica.state === 'ready' || replica.state === 'draining' || statusById.get(replica.replica_id)?.live === true);
    const lastError = replicas
      .flatMap((replica) => (replica.last_error ? [{ replica: replica.replica_id, error: replica.last_error }] : []))
      .sort((left, right) => right.error.at.localeCompare(left.error.at))[0];
    const poolState = context.poolStates.state(pool.id);
    const mockEngine = replicas.some((replica) => replica.mock_engine === true);
    const cpuOverride = replicas.some((replica) => replica.cpu_inference_override === true);
    return reply.send({
      live: live.length > 0,
      ready: ready.length > 0,
      // Draining or drained by an operator (design §5), or a replica draining on its own after a fault.
      draining: poolState.mode !== 'serving' || replicas.some((replica) => replica.state === 'draining' || replica.state === 'drained'),
      // OC-POOL-3003: the last error cause, also after recovery; a rolled-back reload says why when it is newer.
      last_error: operationError(poolState, lastError?.error.at)
        ?? (lastError
        ? `${lastError.error.code} (${lastError.error.kind}) on ${lastError.replica} at ${lastError.error.at}: ${lastError.error.message}`
        : ready.length > 0
          ? null
          : 'no replica is ready'),
      metrics: {
        replicas_ready: ready.length,
        replicas,
        backlog: Number(description.stats?.approximateBacklogCount ?? 0),
        pool_state: { mode: poolState.mode, model_ref: poolState.model_ref ?? pool.model, previous_model_ref: poolState.previous_model_ref, operation: poolState.operation, last_operation: poolState.last_operation },
        ...(mockEngine ? { mock_engine: true, warning: `this pool is served by the MOCK engine, a test double of ${pool.engine}: its tokens are not a model's` } : {}),
        ...(ADAPTER_UNVERIFIED[pool.engine] !== undefined ? { adapter_warning: ADAPTER_UNVERIFIED[pool.engine] } : {}),
        ...(cpuOverride ? { cpu_inference_override: true, cpu_warning: 'DEVELOPMENT OVERRIDE: inference runs on the CPU (ORCH-1101)' } : {}),
      },
    });
  });
}

/** A pool operation that did not complete, when it ended after the newest replica error. */
function operationError(state: PoolState, replicaErrorAt: string | undefined): string | null {
  const last = state.last_operation;
  if (!last || last.outcome === 'completed' || last.cause === null) return null;
  if (replicaErrorAt !== undefined && replicaErrorAt > last.finished_at) return null;
  return `${last.kind} ${last.outcome} (operation ${last.id} at ${last.finished_at}): ${last.cause}`;
}
