import { allHandlersFinished, condition, continueAsNew, defineQuery, defineSignal, defineUpdate, setHandler } from '@temporalio/workflow';
import {
  BEGIN_POOL_OPERATION_UPDATE,
  FINISH_POOL_OPERATION_SIGNAL,
  initialPoolState,
  POOL_OPERATION_PROGRESS_SIGNAL,
  POOL_STATE_QUERY,
} from '../core/pool-state';
import type { BeginPoolOperation, BeginPoolOperationResult, FinishPoolOperation, PoolOperationProgress, PoolState } from '../core/pool-state';

export const poolStateQuery = defineQuery<PoolState>(POOL_STATE_QUERY);
export const beginPoolOperationUpdate = defineUpdate<BeginPoolOperationResult, [BeginPoolOperation]>(BEGIN_POOL_OPERATION_UPDATE);
export const poolOperationProgressSignal = defineSignal<[PoolOperationProgress]>(POOL_OPERATION_PROGRESS_SIGNAL);
export const finishPoolOperationSignal = defineSignal<[FinishPoolOperation]>(FINISH_POOL_OPERATION_SIGNAL);

/** Operations are rare; this bounds the history to many operations' worth per run. */
const CHANGES_PER_RUN = 200;

/**
 * One pool's desired state (workflow id `pool-state-<pool>`, core/pool-state.ts). The gateway claims an
 * operation with the `beginPoolOperation` update — the handler is the one place that enforces one
 * operation per pool at a time, so two gateways racing get one winner. The operation workflow reports
 * progress and its outcome by signal; a signal for an operation that is not the pool's is ignored.
 */
export async function poolStateWorkflow(input: { poolId: string; state: PoolState | null }): Promise<void> {
  let state: PoolState = input.state ?? initialPoolState(input.poolId, new Date().toISOString());
  let changes = 0;
  const change = (next: Omit<PoolState, 'updated_at'>): void => {
    state = { ...next, updated_at: new Date().toISOString() };
    changes += 1;
  };
  setHandler(poolStateQuery, () => state);
  setHandler(beginPoolOperationUpdate, ({ operation, mode }): BeginPoolOperationResult => {
    if (state.operation !== null) return { accepted: false, running: state.operation };
    change({ ...state, operation, mode });
    return { accepted: true, state };
  });
  setHandler(poolOperationProgressSignal, ({ id, mode, switchModel, reload }) => {
    const running = state.operation;
    if (running?.id !== id) return;
    change({
      ...state,
      mode,
      ...(switchModel ? { model_ref: switchModel.modelRef, previous_model_ref: switchModel.previousModelRef } : {}),
      ...(reload ? { operation: { ...running, reload } } : {}),
    });
  });
  setHandler(finishPoolOperationSignal, ({ id, outcome, cause, mode }) => {
    const running = state.operation;
    if (running?.id !== id) return;
    change({ ...state, mode, operation: null, last_operation: { ...running, outcome, cause, finished_at: new Date().toISOString() } });
  });
  // Continue as new only between operations, so a running one keeps its record in this run.
  await condition(() => changes >= CHANGES_PER_RUN && state.operation === null && allHandlersFinished());
  await continueAsNew<typeof poolStateWorkflow>({ poolId: input.poolId, state });
}
