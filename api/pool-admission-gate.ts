import type { PoolConfig } from '../core/config';
import { ErrorCode, OrchError } from '../core/errors';
import { poolRefusesAdmission } from '../core/pool-state';
import type { PoolStateDirectory } from './pool-state-directory';

/** Clients retry a drained pool no sooner than this; an operator's drain usually lasts longer. */
const DRAINED_RETRY_AFTER_MS = 5_000;

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
