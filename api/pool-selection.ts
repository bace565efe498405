import { POOL_DEFAULTS, type OrchConfig, type PoolConfig } from '../core/config';
import { ErrorCode, OrchError } from '../core/errors';
import type { TaskRequest } from '../core/task-request';

/**
 * Finds the pool that serves a request and checks what can be checked before enqueue (ORCH-3014):
 * the engine and model are served, the workload is supported, ctx fits the pool's context and
 * max_tokens fits ctx. Failures are INVALID_PARAMS: retrying the same request cannot succeed.
 */
export function selectPool(config: OrchConfig, request: TaskRequest, modelOf: (pool: PoolConfig) => string = (pool) => pool.model): PoolConfig {
  // modelOf: the model a pool serves now — a reload switches it (api/pool-state-directory.ts).
  const pool = config.pools.find((candidate) => candidate.engine === request.engine && modelOf(candidate) === request.model_ref);
  if (!pool) {
    throw new OrchError(ErrorCode.INVALID_PARAMS, `no pool serves model_ref "${request.model_ref}" on engine ${request.engine}`, {
      engine: request.engine,
    });
  }
  const details = { engine: request.engine, poolId: pool.id };
  if (request.workload !== 'completion') {
    throw new OrchError(ErrorCode.INVALID_PARAMS, `workload "${request.workload}" is not served by pool ${pool.id}`, details);
  }
  const poolCtx = pool.ctx ?? POOL_DEFAULTS.ctx;
  if (request.ctx > poolCtx) {
    throw new OrchError(ErrorCode.INVALID_PARAMS, `ctx ${request.ctx} exceeds the model limit ${poolCtx}`, details);
  }
  if (request.max_tokens > request.ctx) {
    throw new OrchError(ErrorCode.INVALID_PARAMS, `max_tokens ${request.max_tokens} exceeds ctx ${request.ctx}`, details);
  }
  return pool;
}

/** Engine slots one replica offers, as far as config tells (an external engine counts as one). */
export function slotsPerReplicaOf(pool: PoolConfig): number {
  const runtime = pool.engine_runtime;
  return 'slots' in runtime && typeof runtime.slots === 'number' ? runtime.slots : 1;
}

/** Engine slots a pool offers across its replicas. */
export function configuredSlots(pool: PoolConfig): number {
  return slotsPerReplicaOf(pool) * pool.replicas;
}
