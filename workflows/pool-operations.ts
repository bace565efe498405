import { ActivityFailure, ApplicationFailure, getExternalWorkflowHandle, log, proxyActivities, TimeoutFailure } from '@temporalio/workflow';
import { TimeoutType } from '@temporalio/common';
import { poolStateWorkflowId } from '../core/pool-state';
import type { DrainPoolInput, FinishPoolOperation, PoolOperationInput, PoolOperationProgress, PoolOperationResult, ReplicaControlActivities, ReplicaControlResult } from '../core/pool-state';
import { replicaControlTaskQueue } from '../core/task-queues';
import { finishPoolOperationSignal, poolOperationProgressSignal } from './pool-state-workflow';

/**
 * A replica that does not pick its control task up within this is not running; it reads the pool's state
 * when it starts and comes up drained (or serving) by itself, so the operation need not wait for it.
 */
const CONTROL_SCHEDULE_TO_START_MS = 10_000;
/** Control activities heartbeat while they wait; a pool worker that dies is noticed within this. */
const CONTROL_HEARTBEAT_MS = 10_000;
/** Beyond a drain's deadline: time to abort what still runs and report. */
export const DRAIN_MARGIN_MS = 30_000;
/** Resuming only starts a poller on a live engine. */
export const RESUME_TIMEOUT_MS = 60_000;

export type ReplicaOutcome = { readonly replicaId: string; readonly result: ReplicaControlResult | 'absent' } | { readonly replicaId: string; readonly error: string };

function controlActivities(replicaId: string, startToCloseMs: number): ReplicaControlActivities {
  return proxyActivities<ReplicaControlActivities>({
    taskQueue: replicaControlTaskQueue(replicaId),
    scheduleToStartTimeout: CONTROL_SCHEDULE_TO_START_MS,
    startToCloseTimeout: startToCloseMs,
    heartbeatTimeout: CONTROL_HEARTBEAT_MS,
    // A retry lands on the replica's next process, which finds itself already drained (idempotent).
    retry: { maximumAttempts: 3, initialInterval: '1s' },
  });
}

/** Runs one control activity per replica, in parallel; a replica with no process is `absent`, not a failure. */
export async function onEveryReplica(
  replicaIds: readonly string[],
  startToCloseMs: number,
  act: (activities: ReplicaControlActivities) => Promise<ReplicaControlResult>,
): Promise<ReplicaOutcome[]> {
  return Promise.all(
    replicaIds.map(async (replicaId): Promise<ReplicaOutcome> => {
      try {
        return { replicaId, result: await act(controlActivities(replicaId, startToCloseMs)) };
      } catch (error) {
        const cause = error instanceof ActivityFailure ? error.cause : error;
        if (cause instanceof TimeoutFailure && cause.timeoutType === TimeoutType.SCHEDULE_TO_START) return { replicaId, result: 'absent' };
        if (cause instanceof ApplicationFailure && cause.type) return { replicaId, error: `${cause.type} (${cause.message})` };
        return { replicaId, error: cause instanceof Error ? cause.message : String(cause) };
      }
    }),
  );
}

export function summarize(outcomes: readonly ReplicaOutcome[]): Record<string, string> {
  return Object.fromEntries(
    outcomes.map((outcome) => {
      if ('error' in outcome) return [outcome.replicaId, `failed: ${outcome.error}`];
      if (outcome.result === 'absent') return [outcome.replicaId, 'absent'];
      const aborted = outcome.result.aborted ? `, ${outcome.result.aborted} aborted` : '';
      return [outcome.replicaId, `${outcome.result.state} (${outcome.result.modelRef}${aborted})`];
    }),
  );
}

export function firstError(outcomes: readonly ReplicaOutcome[]): string | null {
  for (const outcome of outcomes) if ('error' in outcome) return `${outcome.replicaId}: ${outcome.error}`;
  return null;
}

export function poolStateHandle(poolId: string): ReturnType<typeof getExternalWorkflowHandle> {
  return getExternalWorkflowHandle(poolStateWorkflowId(poolId));
}

export async function reportProgress(input: PoolOperationInput, progress: Omit<PoolOperationProgress, 'id'>): Promise<void> {
  await poolStateHandle(input.poolId).signal(poolOperationProgressSignal, { id: input.operationId, ...progress });
}

export async function finish(input: PoolOperationInput, finished: Omit<FinishPoolOperation, 'id'>): Promise<void> {
  await poolStateHandle(input.poolId).signal(finishPoolOperationSignal, { id: input.operationId, ...finished });
}

/**
 * ORCH-2101 / OC-CTRL-2002: drains every replica of the pool in parallel. The gateway already put the pool in
 * `draining` when it claimed the operation (admission refuses from then on); each replica stops polling,
 * lets in-flight tasks finish and aborts what still runs at the deadline. The pool is then `drained`.
 */
export async function drainPoolWorkflow(input: DrainPoolInput): Promise<PoolOperationResult> {
  const outcomes = await onEveryReplica(input.replicaIds, input.deadlineMs + DRAIN_MARGIN_MS, (replica) => replica.drainReplica({ deadlineMs: input.deadlineMs }));
  const cause = firstError(outcomes);
  // The pool stays out of admission either way; a replica that failed to drain is named in the cause
  // (health shows it), and any replica that restarts reads `drained` and comes up without polling.
  const result: PoolOperationResult = { outcome: cause === null ? 'completed' : 'failed', cause, replicas: summarize(outcomes) };
  await finish(input, { outcome: result.outcome, cause, mode: 'drained' });
  if (cause !== null) log.warn('drain finished with a replica error', { poolId: input.poolId, cause });
  return result;
}

/** Undoes a drain: every replica polls again, then the pool is `serving` (admission accepts again). */
export async function resumePoolWorkflow(input: PoolOperationInput): Promise<PoolOperationResult> {
  const outcomes = await onEveryReplica(input.replicaIds, RESUME_TIMEOUT_MS, (replica) => replica.resumeReplica());
  const cause = firstError(outcomes);
  const result: PoolOperationResult = { outcome: cause === null ? 'completed' : 'failed', cause, replicas: summarize(outcomes) };
  // Serving even if one replica failed: the others poll, and the failed one resumes when it restarts.
  await finish(input, { outcome: result.outcome, cause, mode: 'serving' });
  return result;
}
