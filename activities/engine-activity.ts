import { Context } from '@temporalio/activity';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import type { Logger } from 'pino';
import type { Dispatcher } from 'undici';
import { ErrorCode, hasErrorCode, isErrorCode } from '../core/errors';
import { jobLogBindings } from '../core/job-log-fields';
import type { EngineRunInput, EngineRunOutcome } from '../core/task-workflow-contract';
import type { EngineAdapterV1, EngineToken } from '../gpu-workers/engines/engine-adapter';
import type { SlotAllocator } from '../gpu-workers/slot-allocator';
import { isReplicaAbortReason } from '../gpu-workers/pool-manager/replica-abort';
import { StreamPusher } from './stream-pusher';

export interface ReplicaDescription {
  readonly poolId: string;
  readonly replicaId: string;
  readonly engineVersion: string;
  readonly mockEngine: boolean;
  /** The model the engine serves; a task queued for another (before a reload) is refused, never decoded on the wrong model. */
  readonly modelRef?: string | undefined;
}

export interface EngineActivityDependencies {
  readonly adapter: EngineAdapterV1;
  readonly replica: ReplicaDescription;
  readonly internalToken: string;
  readonly dispatcher: Dispatcher;
  readonly slots: SlotAllocator;
  readonly logger: Logger;
  /** Aborts every task running on this replica (gpu-workers/pool-manager/replica-abort.ts); its reason says how they end. */
  readonly replicaAbort?: AbortSignal | undefined;
}

/** How long after an abort the engine has to report the slot free before the replica is suspect. */
const SLOT_RELEASE_TIMEOUT_MS = 2_000;

type AbortCause = 'client-cancel' | 'temporal-cancel' | 'idle' | 'wall' | 'replica';

/**
 * The engine activity owns the engine call (style rule 5): it streams tokens to the gateway, heartbeats,
 * enforces the idle and wall watchdogs, and aborts the engine request the moment the gateway says the
 * task was cancelled — not on the next heartbeat.
 */
export function createEngineActivities(dependencies: EngineActivityDependencies) {
  const { adapter, replica } = dependencies;

  async function runEngineTask({ workflow }: EngineRunInput): Promise<EngineRunOutcome> {
    const context = Context.current();
    const { attempt } = context.info;
    const { request, timeouts } = workflow;
    const taskId = request.task_id;
    // ORCH-3027: every line of the job carries its identity (job, session, client, pool, replica, model, …).
    const log = dependencies.logger.child({ ...jobLogBindings(workflow, replica), attempt });
    const queueTimeMs = Math.max(0, Date.now() - workflow.admittedAtMs);

    const abort = new AbortController();
    let abortCause: AbortCause | undefined;
    const abortWith = (cause: AbortCause): void => {
      if (abortCause !== undefined) return;
      abortCause = cause;
      abort.abort(new Error(cause));
    };
    const onTemporalCancel = (): void => abortWith('temporal-cancel');
    context.cancellationSignal.addEventListener('abort', onTemporalCancel);
    const onReplicaAbort = (): void => abortWith('replica');
    dependencies.replicaAbort?.addEventListener('abort', onReplicaAbort);
    if (dependencies.replicaAbort?.aborted === true) onReplicaAbort();

    const pusher = workflow.streamSinkUrl
      ? new StreamPusher({
          sinkUrl: workflow.streamSinkUrl,
          taskId,
          attempt,
          internalToken: dependencies.internalToken,
          dispatcher: dependencies.dispatcher,
          onCancelled: () => abortWith('client-cancel'),
          onDisabled: (reason) => log.warn({ reason }, 'token relay stopped; the result keeps the tokens'),
        })
      : undefined;
    pusher?.push({
      type: 'metrics',
      values: {
        phase: 'dispatched',
        attempt,
        replica_id: replica.replicaId,
        engine_version: replica.engineVersion,
        queue_time_ms: queueTimeMs,
        kv_warmth: false,
        ...(replica.mockEngine ? { mock_engine: true } : {}),
      },
    });

    if (replica.modelRef !== undefined && request.model_ref !== replica.modelRef) {
      const failure = ApplicationFailure.create({
        type: ErrorCode.MODEL_DEPRECATED,
        message: `pool ${replica.poolId} was reloaded: it serves ${replica.modelRef}, not ${request.model_ref}`,
        nonRetryable: true,
      });
      context.cancellationSignal.removeEventListener('abort', onTemporalCancel);
      dependencies.replicaAbort?.removeEventListener('abort', onReplicaAbort);
      throw await endStreamWith(pusher, failure, request.engine);
    }

    const tokens: string[] = [];
    const slotId = dependencies.slots.acquire();
    const outcomeOf = (outcome: EngineRunOutcome['outcome'], decodeMs: number, streamEnded: boolean): EngineRunOutcome => ({
      outcome,
      tokens,
      tokensOut: tokens.length,
      decodeMs,
      queueTimeMs,
      replicaId: replica.replicaId,
      engineVersion: replica.engineVersion,
      streamEnded,
      attempt,
    });
    // No heartbeat at start: the timeout already runs from the activity's start, and a short task then
    // costs Temporal no heartbeat write at all. The SDK coalesces these to one per 0.8 × heartbeat_ms.
    const heartbeatTimer = setInterval(() => context.heartbeat({ tokensOut: tokens.length }), Math.max(100, timeouts.heartbeatMs / 3));
    const wallTimer = setTimeout(() => abortWith('wall'), timeouts.wallMs);
    let idleTimer = setTimeout(() => abortWith('idle'), timeouts.idleMs);
    const decodeStartedAt = performance.now();
    log.info({ queue_time_ms: queueTimeMs, engine_version: replica.engineVersion }, 'task dispatched');

    try {
      const stream = adapter.complete(
        { prompt: request.prompt ?? '', maxTokens: request.max_tokens, seed: request.seed, samplerProfile: request.sampler_profile_version, slotId },
        abort.signal,
      );
      let step: IteratorResult<EngineToken, unknown> = await stream.next();
      while (!step.done) {
        const token = step.value;
        tokens.push(token.text);
        pusher?.push({ type: 'token', text: token.text, index: token.index });
        clearTimeout(idleTimer);
        idleTimer = setTimeout(() => abortWith('idle'), timeouts.idleMs);
        step = await stream.next();
      }
      const decodeMs = Math.round(performance.now() - decodeStartedAt);
      pusher?.push({ type: 'end', tokensOut: tokens.length, decodeMs });
      await pusher?.flush();
      log.info({ tokens_out: tokens.length, decode_time_ms: decodeMs }, 'task decoded');
      const streamEnded = pusher !== undefined && (pusher.cancelled || pusher.terminalAccepted);
      return outcomeOf(pusher?.cancelled ? 'cancelled' : 'completed', decodeMs, streamEnded);
    } catch (error) {
      const decodeMs = Math.round(performance.now() - decodeStartedAt);
      if (abortCause === 'client-cancel' || abortCause === 'temporal-cancel') {
        await confirmSlotFree(slotId, log);
        log.info({ tokens_out: tokens.length, cause: abortCause }, 'task cancelled; engine request aborted');
        if (abortCause === 'temporal-cancel') throw new CancelledFailure('cancelled');
        return outcomeOf('cancelled', decodeMs, pusher?.cancelled ?? false);
      }
      if (abortCause === 'idle' || abortCause === 'wall') {
        await confirmSlotFree(slotId, log);
        const limit = abortCause === 'idle' ? `no token for ${timeouts.idleMs} ms` : `decode ran past ${timeouts.wallMs} ms`;
        throw await endStreamWith(pusher, ApplicationFailure.create({ type: ErrorCode.DECODE_TIMEOUT, message: limit, nonRetryable: true }), request.engine);
      }
      if (abortCause === 'replica') {
        await confirmSlotFree(slotId, log);
        const failure = replicaAbortFailure(dependencies.replicaAbort?.reason);
        log.warn({ tokens_out: tokens.length, code: failure.type, retried: !failure.nonRetryable }, 'task aborted: the replica stopped serving');
        throw failure.nonRetryable ? await endStreamWith(pusher, failure, request.engine) : failure;
      }
      const failure = toActivityFailure(error);
      throw failure.nonRetryable ? await endStreamWith(pusher, failure, request.engine) : failure;
    } finally {
      clearInterval(heartbeatTimer);
      clearTimeout(wallTimer);
      clearTimeout(idleTimer);
      context.cancellationSignal.removeEventListener('abort', onTemporalCancel);
      dependencies.replicaAbort?.removeEventListener('abort', onReplicaAbort);
      dependencies.slots.release(slotId);
    }
  }

  async function confirmSlotFree(slotId: number | undefined, log: Logger): Promise<void> {
    try {
      await adapter.confirmSlotFree(slotId, SLOT_RELEASE_TIMEOUT_MS);
    } catch (error) {
      log.error({ err: error }, 'engine did not free the slot after an abort');
    }
  }

  return { runEngineTask };
}

export type EngineActivities = ReturnType<typeof createEngineActivities>;

/** A failure no retry will change ends the client's stream at once, without waiting for the workflow's report. */
async function endStreamWith(pusher: StreamPusher | undefined, failure: ApplicationFailure, engine: string): Promise<ApplicationFailure> {
  if (pusher && isErrorCode(failure.type)) {
    pusher.push({ type: 'error', code: failure.type, message: failure.message, engine });
    await pusher.flush();
  }
  return failure;
}

function replicaAbortFailure(reason: unknown): ApplicationFailure {
  const abort = isReplicaAbortReason(reason) ? reason : { code: ErrorCode.WORKER_RESET, message: 'the replica stopped serving', retry: true };
  return ApplicationFailure.create({ type: abort.code, message: abort.message, nonRetryable: !abort.retry });
}

function toActivityFailure(error: unknown): ApplicationFailure {
  if (hasErrorCode(error)) {
    return ApplicationFailure.create({ type: error.code, message: error.message, nonRetryable: error.code === ErrorCode.INVALID_PARAMS });
  }
  const message = error instanceof Error ? error.message : String(error);
  return ApplicationFailure.create({ type: ErrorCode.WORKER_RESET, message: `engine failed: ${message}` });
}
