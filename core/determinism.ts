import type { Engine } from './engines';
import { ENGINES_WITHOUT_DETERMINISM } from './engines';
import { ErrorCode, OrchError } from './errors';

/** A task's `determinism` (spec §2) and a pool's posture (`pools[].determinism`). */
export const DETERMINISM_MODES = ['strict', 'best_effort'] as const;
export type Determinism = (typeof DETERMINISM_MODES)[number];

export interface PoolDeterminism {
  readonly id: string;
  /** Absent → strict: deterministic outputs are the default (ORCH-3045), where the engine makes any claim. */
  readonly determinism?: Determinism | null | undefined;
  readonly engine?: Engine | undefined;
}

/** The pool's posture: as configured, else strict, else best_effort for an engine that claims no determinism. */
export function poolPosture(pool: PoolDeterminism): Determinism {
  if (pool.determinism) return pool.determinism;
  return pool.engine !== undefined && ENGINES_WITHOUT_DETERMINISM.includes(pool.engine) ? 'best_effort' : 'strict';
}

/**
 * The determinism a task runs with: its own choice, else its pool's posture. A pool that declared
 * `best_effort` (a llama-server pool of several slots, whose concurrent requests share batches) cannot
 * give a byte-exact stream, so a task that asks for `strict` there is refused rather than served loosely.
 */
export function taskDeterminism(pool: PoolDeterminism, requested: Determinism | undefined, engine: string): Determinism {
  const posture = poolPosture(pool);
  if (requested === 'strict' && posture === 'best_effort') {
    throw new OrchError(
      ErrorCode.INVALID_PARAMS,
      `pool ${pool.id} serves determinism best_effort (its engine batches concurrent requests, or claims no determinism), so a strict task cannot run there; send determinism: best_effort or use a single-slot pool of an engine that claims it`,
      { engine, poolId: pool.id },
    );
  }
  return requested ?? posture;
}
