import {
  ActivityCancellationType,
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  isCancellation,
  log,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  sleep,
  TimeoutFailure,
  upsertSearchAttributes,
} from '@temporalio/workflow';
import { TimeoutType } from '@temporalio/common';
import { PRIORITY_KEY } from '../core/engines';
import { ErrorCode, ERROR_TRAITS, isErrorCode } from '../core/errors';
import { SearchAttr, type TaskState } from '../core/search-attributes';
import { poolTaskQueue, replicaLaneTaskQueue } from '../core/task-queues';
import { EVICTION_REASON, type EngineRunOutcome, type TaskResult, type TaskStatus, type TaskWorkflowInput, type TerminalReport } from '../core/task-workflow-contract';
import type { EngineActivities } from '../activities/engine-activity';
import type { FastStartOutcomeActivities } from '../activities/fast-start-outcome';
import type { GatewayNotifyActivities } from '../activities/gateway-notify';
import { cancelTaskUpdate, taskStatusQuery } from './definitions';

/** Grace beyond the activity's own wall watchdog before Temporal's start-to-close backstop fires. */
const WALL_BACKSTOP_GRACE_MS = 5_000;
/**
 * How often a task whose every attempt reached a full replica (REPLICA_EXHAUSTED: not started, only
 * bounced back to the queue) is put back on the pool queue with fresh attempts. Found by `npm run chaos`:
 * a restarted pool worker's stale polls, racing fast starts, used up all three attempts of a queued task.
 */
const MAX_EXHAUSTED_REQUEUES = 10;
const EXHAUSTED_REQUEUE_PATCH = 'requeue-after-replica-exhausted';
/** Histories recorded before a Temporal cancel (the Web UI's button) counted as a cancel replay as they ran. */
const WORKFLOW_CANCEL_PATCH = 'workflow-cancel-is-a-cancel';
/** Histories recorded before a full lane was waited for (within the placement wait) replay as they ran. */
const LANE_FULL_RETRY_PATCH = 'lane-full-waits-within-placement';
/** How long a placed task waits before asking its replica's lane again after finding it full. */
const LANE_FULL_RETRY_MS = 100;
/** The cancel reason a Temporal cancel request records (Web UI, `temporal workflow cancel`). */
const TEMPORAL_CANCEL_REASON = 'temporal-cancel';

const notify = proxyLocalActivities<GatewayNotifyActivities>({
  startToCloseTimeout: '5s',
  retry: { maximumAttempts: 3, initialInterval: '100ms' },
});

/**
 * One workflow per task (design §1): dispatches the engine activity on the pool's task queue with the
 * task's priority and the client's fairness key, applies the timeouts, handles cancel, and records a
 * terminal state. Tokens never pass through here; they go from the activity to the gateway.
 */
export async function taskWorkflow(input: TaskWorkflowInput): Promise<TaskResult> {
  const { request, timeouts } = input;
  let state: TaskState = 'admitted';
  let cancelReason: string | undefined;
  const engineScope = new CancellationScope();

  const status = (): TaskStatus => ({ state });
  setHandler(taskStatusQuery, status);
  setHandler(
    cancelTaskUpdate,
    ({ reason }) => {
      if (!isTerminal(state) && cancelReason === undefined) {
        cancelReason = reason;
        engineScope.cancel();
      }
      return status();
    },
    { validator: ({ reason }) => void assertReason(reason) },
  );

  // Issue 13: a cancel requested through Temporal (the Web UI's Cancel, `temporal workflow cancel`) ends the
  // task as cancelled, with the stream's terminal frame, as a client's cancel does — not failed/INTERNAL.
  CancellationScope.current().cancelRequested.catch(() => {
    if (!isTerminal(state) && cancelReason === undefined && patched(WORKFLOW_CANCEL_PATCH)) cancelReason = TEMPORAL_CANCEL_REASON;
  });

  const engine = proxyActivities<EngineActivities>({
    taskQueue: poolTaskQueue(input.poolId),
    // A task that no replica picks up before its deadline never starts (ORCH-3016 on the queue side).
    scheduleToStartTimeout: request.deadline_ms,
    startToCloseTimeout: timeouts.wallMs + WALL_BACKSTOP_GRACE_MS,
    heartbeatTimeout: timeouts.heartbeatMs,
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    retry: {
      maximumAttempts: timeouts.maxAttempts,
      initialInterval: '100ms',
      backoffCoefficient: 2,
      nonRetryableErrorTypes: NON_RETRYABLE_CODES,
    },
    priority: { priorityKey: PRIORITY_KEY[request.priority], fairnessKey: input.clientId },
  });

  let outcome: EngineRunOutcome | undefined;
  let failure: { code: ErrorCode; message: string } | undefined;
  // Placed tasks try their replica's lane first (ORCH-3009); without placement the commands are
  // exactly those of earlier versions, so recorded histories replay unchanged.
  // A fast-started task (ADR 2026-12-06) collects the run its replica began instead of dispatching attempt 1.
  const isCancelled = (): boolean => cancelReason !== undefined;
  let placed: LaneRun | undefined;
  if (input.placement?.fastStartUrl !== undefined) placed = await collectFastStart(input, engineScope, isCancelled);
  else if (input.placement) placed = await runOnLane(input, engineScope, isCancelled);
  if (placed?.kind === 'done') outcome = placed.outcome;
  else if (placed?.kind === 'failed') failure = placed.failure;
  else if (cancelReason === undefined) {
    // Attempt numbers keep growing across requeues: the gateway drops chunks of an older attempt.
    let attemptOffset = placed ? 1 : 0;
    for (let requeues = 0; ; requeues += 1) {
      try {
        outcome = await engineScope.run(() => engine.runEngineTask({ workflow: input, attemptOffset }));
      } catch (error) {
        if (cancelReason === undefined && requeues < MAX_EXHAUSTED_REQUEUES && onlyBouncedOffFullReplicas(error) && patched(EXHAUSTED_REQUEUE_PATCH)) {
          attemptOffset += timeouts.maxAttempts;
          continue;
        }
        if (cancelReason === undefined || !isCancellation(error)) failure = classifyFailure(error);
      }
      break;
    }
  }
  const placement = input.placement
    ? { replicaId: input.placement.replicaId, reason: input.placement.reason, laneHit: placed?.kind === 'done' }
    : undefined;
  if (placement && !placement.laneHit) log.info('placement fell back to the pool queue', { taskId: request.task_id, replicaId: placement.replicaId });

  if (cancelReason === EVICTION_REASON && outcome === undefined) {
    failure = { code: ErrorCode.QUEUE_FULL_DROP_LRU, message: 'evicted from a full queue to admit a newer task' };
  }
  if (outcome?.outcome === 'cancelled' || (outcome === undefined && failure === undefined)) {
    state = 'cancelled';
  } else if (failure) {
    state = 'failed';
  } else {
    state = 'completed';
  }
  upsertSearchAttributes([
    { key: SearchAttr.taskState, value: state },
    ...(outcome ? [{ key: SearchAttr.replica, value: outcome.replicaId }] : []),
  ]);
  // Usually the activity's own `end` already closed the stream; report only what the gateway cannot know.
  if (!outcome?.streamEnded) await reportTerminal(input, outcome, failure, state);

  if (failure) {
    log.info('task failed', { taskId: request.task_id, code: failure.code });
    throw ApplicationFailure.create({ type: failure.code, message: failure.message, nonRetryable: true });
  }
  const tokens = outcome?.tokens ?? [];
  return {
    version: 1,
    taskId: request.task_id,
    state: state === 'completed' ? 'completed' : 'cancelled',
    text: tokens.join(''),
    tokens,
    tokensOut: outcome?.tokensOut ?? 0,
    decodeMs: outcome?.decodeMs ?? 0,
    queueTimeMs: outcome?.queueTimeMs ?? 0,
    replicaId: outcome?.replicaId,
    engineVersion: outcome?.engineVersion,
    attempt: outcome?.attempt ?? 0,
    ...(placement ? { placement } : {}),
    ...(outcome?.kvWarmth !== undefined ? { kvWarmth: outcome.kvWarmth, kvMigrated: false as const } : {}),
  };
}

const NON_RETRYABLE_CODES: string[] = [ErrorCode.INVALID_PARAMS, ErrorCode.DECODE_TIMEOUT, ErrorCode.UNTRUSTED_ARTIFACT];

type LaneRun =
  | { readonly kind: 'done'; readonly outcome: EngineRunOutcome }
  | { readonly kind: 'failed'; readonly failure: { code: ErrorCode; message: string } }
  | { readonly kind: 'fallback' };

/**
 * One attempt on the placed replica's lane, bounded by the placement wait (and the deadline). A lane
 * nobody picks up in time (replica busy, stopped or not Ready, so not polling) or a retryable failure
 * there falls back to the pool queue; a non-retryable failure or a cancel ends the task as usual.
 */
async function runOnLane(input: TaskWorkflowInput, scope: CancellationScope, cancelled: () => boolean): Promise<LaneRun> {
  const placement = input.placement;
  if (!placement) return { kind: 'fallback' };
  const { timeouts, request } = input;
  const lane = proxyActivities<EngineActivities>({
    taskQueue: replicaLaneTaskQueue(placement.replicaId),
    scheduleToStartTimeout: Math.max(1, Math.min(placement.waitMs, request.deadline_ms)),
    startToCloseTimeout: timeouts.wallMs + WALL_BACKSTOP_GRACE_MS,
    heartbeatTimeout: timeouts.heartbeatMs,
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    retry: { maximumAttempts: 1, nonRetryableErrorTypes: NON_RETRYABLE_CODES },
  });
  // A lane found full (a fast start took the slot its poll had seen free) is asked again while the placement
  // wait lasts: a pinned or session task waits for its replica as long as the placement allows.
  const waitUntil = Date.now() + Math.max(1, Math.min(placement.waitMs, request.deadline_ms));
  for (;;) {
    try {
      return { kind: 'done', outcome: await scope.run(() => lane.runEngineTask({ workflow: input })) };
    } catch (error) {
      if (cancelled() && isCancellation(error)) return { kind: 'fallback' };
      if (onlyBouncedOffFullReplicas(error) && Date.now() + LANE_FULL_RETRY_MS < waitUntil && !cancelled() && patched(LANE_FULL_RETRY_PATCH)) {
        await scope.run(() => sleep(LANE_FULL_RETRY_MS)).catch(() => undefined);
        if (cancelled()) return { kind: 'fallback' };
        continue;
      }
      if (laneMayFallBack(error)) return { kind: 'fallback' };
      return { kind: 'failed', failure: classifyFailure(error) };
    }
  }
}

/**
 * The outcome of the run a replica fast-started before this workflow existed, collected by a local
 * activity (no activity task on any queue). A replica that died, or that no longer holds the run, falls
 * back to the pool queue; the new attempt is checked against the streamed prefix (design §6).
 */
async function collectFastStart(input: TaskWorkflowInput, scope: CancellationScope, cancelled: () => boolean): Promise<LaneRun> {
  const collect = proxyLocalActivities<FastStartOutcomeActivities>({
    startToCloseTimeout: input.timeouts.wallMs + WALL_BACKSTOP_GRACE_MS,
    retry: { maximumAttempts: 1 },
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
  });
  try {
    return { kind: 'done', outcome: await scope.run(() => collect.collectFastStartOutcome({ workflow: input })) };
  } catch (error) {
    if (cancelled() && isCancellation(error)) return { kind: 'fallback' };
    if (laneMayFallBack(error)) return { kind: 'fallback' };
    return { kind: 'failed', failure: classifyFailure(error) };
  }
}

/** Nobody took the lane in time, the worker died, or the engine failed in a way another replica may not. */
function laneMayFallBack(error: unknown): boolean {
  const cause = error instanceof ActivityFailure ? error.cause : error;
  if (cause instanceof TimeoutFailure) {
    return cause.timeoutType === TimeoutType.SCHEDULE_TO_START || cause.timeoutType === TimeoutType.HEARTBEAT;
  }
  if (cause instanceof ApplicationFailure) return !cause.nonRetryable && !NON_RETRYABLE_CODES.includes(cause.type ?? '');
  return false;
}

/** The last attempt found its replica full, so the task never started there: it is still only queued. */
function onlyBouncedOffFullReplicas(error: unknown): boolean {
  const cause = error instanceof ActivityFailure ? error.cause : error;
  return cause instanceof ApplicationFailure && cause.type === ErrorCode.REPLICA_EXHAUSTED;
}

/** Maps an activity failure onto the contract's codes. */
function classifyFailure(error: unknown): { code: ErrorCode; message: string } {
  const cause = error instanceof ActivityFailure ? error.cause : error;
  if (cause instanceof ApplicationFailure && isErrorCode(cause.type)) {
    return { code: cause.type, message: cause.message };
  }
  if (cause instanceof TimeoutFailure) {
    switch (cause.timeoutType) {
      case TimeoutType.SCHEDULE_TO_START:
        return { code: ErrorCode.DEADLINE_UNMET, message: 'no replica picked the task up before deadline_ms' };
      case TimeoutType.HEARTBEAT:
        return { code: ErrorCode.WORKER_RESET, message: 'the pool worker stopped responding on every attempt' };
      case TimeoutType.START_TO_CLOSE:
        return { code: ErrorCode.DECODE_TIMEOUT, message: 'decode exceeded the wall timeout' };
      default:
        return { code: ErrorCode.INTERNAL, message: `timeout ${String(cause.timeoutType)}` };
    }
  }
  return { code: ErrorCode.INTERNAL, message: ERROR_TRAITS.INTERNAL.message };
}

async function reportTerminal(
  input: TaskWorkflowInput,
  outcome: EngineRunOutcome | undefined,
  failure: { code: ErrorCode; message: string } | undefined,
  state: TaskState,
): Promise<void> {
  if (!input.streamSinkUrl) return;
  let part: TerminalReport['part'];
  if (failure) part = { type: 'error', code: failure.code, message: failure.message, engine: input.request.engine };
  else if (state === 'cancelled') part = { type: 'cancelled' };
  else part = { type: 'end', tokensOut: outcome?.tokensOut ?? 0, decodeMs: outcome?.decodeMs ?? 0 };
  try {
    // Non-cancellable: the report must go out even though the engine scope was cancelled.
    await CancellationScope.nonCancellable(() =>
      notify.reportTerminal({ taskId: input.request.task_id, streamSinkUrl: input.streamSinkUrl ?? '', part }),
    );
  } catch {
    // The gateway that held the stream is gone; readers rebuild the stream from this workflow's result.
    log.warn('terminal report not delivered', { taskId: input.request.task_id });
  }
}

function isTerminal(state: TaskState): boolean {
  return state === 'completed' || state === 'cancelled' || state === 'failed';
}

function assertReason(reason: unknown): void {
  if (typeof reason !== 'string' || reason.length === 0 || reason.length > 200) {
    throw new Error('cancel reason must be a non-empty string of at most 200 characters');
  }
}
