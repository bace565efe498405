import type { EngineRunOutcome } from './task-workflow-contract';

/**
 * The fast-start listener's wire format (.specs/decisions/2026-12-06-fast-start.md), shared by the pool
 * worker that serves it and the workflow's local activity that reads it.
 */

/** The last line of an outcome response: what the local activity returns, or the failure it throws. */
export type FastStartOutcomeLine =
  | { readonly outcome: EngineRunOutcome }
  | { readonly failure: { readonly type: string; readonly message: string; readonly nonRetryable: boolean } };

/** While the run decodes, the listener writes an empty line this often, so a silent replica is told from a slow one. */
export const OUTCOME_KEEPALIVE_MS = 1_000;
