import { ErrorCode, OrchError } from './errors';

/** A task's `determinism` (spec §2) and a pool's posture (`pools[].determinism`). */
export const DETERMINISM_MODES = ['strict', 'best_effort'] as const;
export type Determinism = (typeof DETERMINISM_MODES)[number];

export interface PoolDeterminism {
  readonly id: string;
  /** Absent → strict: deterministic outputs are the default (ORCH-3045). */
  readonly determinism?: Determinism | null | undefined;
}

/**
 * The determinism a task runs with: its own choice, else its pool's posture. A pool that declared
 * `best_effort` (a llama-server pool of several slots, whose concurrent requests share batches) cannot
 * give a byte-exact stream, so a task that asks for `strict` there is refused rather than served loosely.
 */
export function taskDeterminism(pool: PoolDeterminism, requested: Determinism | undefined, engine: string): Determinism {
  const posture = pool.determinism ?? 'strict';
  if (requested === 'strict' && posture === 'best_effort') {
    throw new OrchError(
      ErrorCode.INVALID_PARAMS,
      `pool ${pool.id} serves determinism best_effort (its engine batches concurrent requests), so a strict task cannot run there; send determinism: best_effort or use a single-slot pool`,
      { engine, poolId: pool.id },
    );
  }
  return requested ?? posture;
}
