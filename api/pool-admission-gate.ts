import type { PoolConfig } from '../core/config';
import { ErrorCode, OrchError } from '../core/errors';
import { poolRefusesAdmission } from '../core/pool-state';
import type { PoolStateDirectory } from './pool-state-directory';

/** Clients retry a drained pool no sooner than this; an operator's drain usually lasts longer. */
const DRAINED_RETRY_AFTER_MS = 5_000;
/** A replica restarting (a crash, a new start) is back within seconds. */
const UNREADY_RETRY_AFTER_MS = 2_000;

/**
 * ORCH-3018 / OC-POOL-3012: a pool with no Ready replica fails fast with POOL_UNREADY before enqueue, rather
 * than queueing a task nothing can run. Until the gateway has read the pool's queue once it admits (a start
 * must not refuse its first tasks on a guess).
 */
export function assertPoolHasReadyReplica(hasReadyReplica: boolean | undefined, pool: PoolConfig, engine: string): void {
  if (hasReadyReplica !== false) return;
  throw new OrchError(ErrorCode.POOL_UNREADY, `pool ${pool.id} has no Ready replica; retry shortly (GET /v1/pools/${pool.id}/health says why)`, {
    engine,
    poolId: pool.id,
    retryAfterMs: UNREADY_RETRY_AFTER_MS,
  });
}

/**
 * ORCH-2101: a pool that is draining, drained or reloading takes no new task — refused before enqueue, so
 * nothing new waits on a queue no replica polls. Tasks already queued stay queued until resume or deadline.
 */
export function assertPoolAdmits(poolStates: PoolStateDirectory, pool: PoolConfig, engine: string): void {
  const state = poolStates.state(pool.id);
  if (!poolRefusesAdmission(state.mode)) return;
  const by = state.operation ? ` by operation ${state.operation.id}` : '';
  throw new OrchError(ErrorCode.POOL_UNAVAILABLE, `pool ${pool.id} is ${state.mode}${by}; it takes no new tasks until resumed`, {
    engine,
    poolId: pool.id,
    retryAfterMs: DRAINED_RETRY_AFTER_MS,
  });
}
