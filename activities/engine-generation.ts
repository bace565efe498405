import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import type { Logger } from 'pino';
import type { Dispatcher } from 'undici';
import { ErrorCode, hasErrorCode, isErrorCode } from '../core/errors';
import { jobLogBindings } from '../core/job-log-fields';
import type { EngineRunOutcome, TaskWorkflowInput } from '../core/task-workflow-contract';
import type { CompletionSummary, EngineAdapter, EngineToken } from '../gpu-workers/engines/engine-adapter';
import type { ReplicaEventCounts } from '../gpu-workers/pool-manager/replica-events';
import type { SlotAllocator } from '../gpu-workers/slot-allocator';
import { kvSessionKey, type KvResidency } from '../gpu-workers/kv-residency';
import { isReplicaAbortReason } from '../gpu-workers/pool-manager/replica-abort';
import { StreamPusher } from './stream-pusher';
import type { LiveRelays } from '../gpu-workers/live-relays';
import { runKvTurn } from './kv-turn';

export interface ReplicaDescription {
  readonly poolId: string;
  readonly replicaId: string;
  readonly engineVersion: string;
  readonly mockEngine: boolean;
  readonly quant?: string | null | undefined;
  readonly tensorSplit?: string | null | undefined;
  /** The model the engine serves; a task queued for another (before a reload) is refused, never decoded on the wrong model. */
  readonly modelRef?: string | undefined;
}

export interface GenerationDependencies {
  readonly adapter: EngineAdapter;
  readonly replica: ReplicaDescription;
  readonly internalToken: string;
  readonly dispatcher: Dispatcher;
  readonly slots: SlotAllocator;
  readonly logger: Logger;
  /** The replica's OOM / driver-reset history for the job's end line (ORCH-3027); zeros when absent. */
  readonly events?: { snapshot(): ReplicaEventCounts } | undefined;
  /** Which session's KV each slot holds (ORCH-3022); absent → no session cache reuse. */
  readonly kv?: KvResidency | undefined;
  /** Aborts every task running on this replica (gpu-workers/pool-manager/replica-abort.ts); its reason says how they end. */
  readonly replicaAbort?: AbortSignal | undefined;
  /** Where a gateway that takes over a stream finds this run's relay (api/stream-handover.ts). */
  readonly relays?: LiveRelays | undefined;
}

/**
 * Why a generation stopped early. `withdrawn`: a fast-started run given up (its gateway cancelled it or
 * never wrote the workflow); it ends quietly, like a client cancel.
 */
export type AbortCause = 'client-cancel' | 'temporal-cancel' | 'idle' | 'wall' | 'replica' | 'withdrawn';

/** One attempt's engine call, whether a Temporal activity started it or a fast start did (ADR 2026-12-06). */
export interface EngineGeneration {
  readonly taskId: string;
  readonly attempt: number;
  /** Resolves with the outcome; rejects with the ApplicationFailure (or CancelledFailure) the activity throws. */
  readonly done: Promise<EngineRunOutcome>;
  readonly tokensOut: number;
  abort(cause: AbortCause): void;
}

const NO_EVENTS: ReplicaEventCounts = { eviction_events: 0, oom_events: 0, driver_reset_events: 0, ecc_events: 0 };

/** How long after an abort the engine has to report the slot free before the replica is suspect. */
const SLOT_RELEASE_TIMEOUT_MS = 2_000;

export interface GenerationOptions {
  readonly attempt: number;
  /** Attempts already spent on a placement lane: the `dispatched` frame says the lane missed. */
  readonly attemptOffset: number;
}

/**
 * Starts one attempt on the engine and returns at once: it takes a slot, streams tokens to the gateway,
 * enforces the idle and wall watchdogs, and aborts the engine request the moment the gateway says the
 * task was cancelled — not on the next heartbeat. The caller (the engine activity, or a fast start
 * and the local activity that collects it) owns heartbeats and Temporal cancellation.
 */
export function startGeneration(dependencies: GenerationDependencies, workflow: TaskWorkflowInput, options: GenerationOptions): EngineGeneration {
  const { adapter, replica } = dependencies;
  const { attempt, attemptOffset } = options;
  const { request, timeouts } = workflow;
  const taskId = request.task_id;
  // ORCH-3027: every line of the job carries its identity (job, session, client, pool, replica, model, …).
  const log = dependencies.logger.child({ ...jobLogBindings(workflow, replica), attempt });
  const queueTimeMs = Math.max(0, Date.now() - workflow.admittedAtMs);
  const tokens: string[] = [];

  const abortController = new AbortController();
  let abortCause: AbortCause | undefined;
  const abortWith = (cause: AbortCause): void => {
    if (abortCause !== undefined) return;
    abortCause = cause;
    abortController.abort(new Error(cause));
  };
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
        onOrphaned: (reason) => log.warn({ reason }, 'token relay lost its gateway; it resumes if another gateway takes the stream over, and the result keeps the tokens'),
      })
    : undefined;
  const forgetRelay = pusher ? dependencies.relays?.register(taskId, pusher) : undefined;

  const run = async (): Promise<EngineRunOutcome> => {
    pusher?.push({
      type: 'metrics',
      values: {
        phase: 'dispatched',
        attempt,
        replica_id: replica.replicaId,
        engine_version: replica.engineVersion,
        queue_time_ms: queueTimeMs,
        kv_warmth: false,
        // KV never moves between replicas (ORCH-3023); a placed task says whether its lane took it.
        kv_migrated: false,
        ...(workflow.placement
          ? { placed_on: workflow.placement.replicaId, placement_reason: workflow.placement.reason, lane_hit: attemptOffset === 0 }
          : {}),
        ...(replica.mockEngine ? { mock_engine: true } : {}),
      },
    });

    if (replica.modelRef !== undefined && request.model_ref !== replica.modelRef) {
      const failure = ApplicationFailure.create({
        type: ErrorCode.MODEL_DEPRECATED,
        message: `pool ${replica.poolId} was reloaded: it serves ${replica.modelRef}, not ${request.model_ref}`,
        nonRetryable: true,
      });
      dependencies.replicaAbort?.removeEventListener('abort', onReplicaAbort);
      throw await endStreamWith(pusher, failure, request.engine);
    }

    const session = kvSessionKey(workflow.clientId, request.session_id);
    const { kv } = dependencies;
    const residentSlot = kv?.slotOf(session);
    const slotId = dependencies.slots.acquire(residentSlot, kv ? (slot) => kv.reuseCost(slot) : undefined);
    if (kv && slotId !== undefined) kv.claim(session, slotId);
    // ORCH-3022: a session turn reuses its own slot's cache — never another session's prefix — and never
    // under strict determinism (a cached prefix changes the batch shape, engines.md §1.6).
    const cachePrompt = kv !== undefined && slotId !== undefined && slotId === residentSlot && request.determinism !== 'strict';
    let kvState: { kvWarmth: boolean; kvBytes: number } = { kvWarmth: false, kvBytes: 0 };
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
      kvWarmth: kvState.kvWarmth,
      kvBytes: kvState.kvBytes,
    });
    const wallTimer = setTimeout(() => abortWith('wall'), timeouts.wallMs);
    let idleTimer = setTimeout(() => abortWith('idle'), timeouts.idleMs);
    const decodeStartedAt = performance.now();
    log.info({ queue_time_ms: queueTimeMs, engine_version: replica.engineVersion }, 'task dispatched');

    try {
      // An OpenAI chat request: the engine renders the messages with the model's own chat template.
      const prompt = workflow.chat ? { chat: workflow.chat } : (request.prompt ?? '');
      const stream = adapter.complete(
        { prompt, maxTokens: request.max_tokens, seed: request.seed, samplerProfile: request.sampler_profile_version, slotId, cachePrompt, sampling: workflow.sampling },
        abortController.signal,
      );
      let step: IteratorResult<EngineToken, CompletionSummary> = await stream.next();
      while (!step.done) {
        const token = step.value;
        tokens.push(token.text);
        pusher?.push({ type: 'token', text: token.text, index: token.index });
        clearTimeout(idleTimer);
        idleTimer = setTimeout(() => abortWith('idle'), timeouts.idleMs);
        step = await stream.next();
      }
      const decodeMs = Math.round(performance.now() - decodeStartedAt);
      if (kv) {
        const turn = runKvTurn(kv, session, slotId, cachePrompt, step.value);
        kvState = { kvWarmth: turn.kv_warmth, kvBytes: turn.kv_bytes };
        pusher?.push({ type: 'metrics', values: { phase: 'kv', replica_id: replica.replicaId, engine_version: replica.engineVersion, ...turn } });
      }
      const summary = step.value;
      pusher?.push({ type: 'end', tokensOut: tokens.length, decodeMs, tokensIn: summary.tokensIn, stopReason: summary.stopReason });
      await pusher?.flush();
      log.info(
        {
          tokens_in: summary.tokensIn,
          tokens_out: tokens.length,
          decode_time_ms: decodeMs,
          kv_warmth: kvState.kvWarmth,
          ...(dependencies.events?.snapshot() ?? NO_EVENTS),
          // KV evictions (ORCH-3022): sessions this replica's slots dropped since it became Ready.
          ...(kv ? { eviction_events: kv.evictionsTotal } : {}),
        },
        'task decoded',
      );
      const streamEnded = pusher !== undefined && (pusher.cancelled || pusher.terminalAccepted);
      return outcomeOf(pusher?.cancelled ? 'cancelled' : 'completed', decodeMs, streamEnded);
    } catch (error) {
      // The slot's KV is in an unknown state after a failed or aborted turn: the session no longer owns it.
      kv?.forget(session);
      const decodeMs = Math.round(performance.now() - decodeStartedAt);
      if (abortCause === 'client-cancel' || abortCause === 'temporal-cancel' || abortCause === 'withdrawn') {
        await confirmStopped(adapter, slotId, log);
        log.info({ tokens_out: tokens.length, cause: abortCause }, 'task cancelled; engine request aborted');
        if (abortCause === 'temporal-cancel') throw new CancelledFailure('cancelled');
        return outcomeOf('cancelled', decodeMs, pusher?.cancelled ?? false);
      }
      if (abortCause === 'idle' || abortCause === 'wall') {
        await confirmStopped(adapter, slotId, log);
        const limit = abortCause === 'idle' ? `no token for ${timeouts.idleMs} ms` : `decode ran past ${timeouts.wallMs} ms`;
        throw await endStreamWith(pusher, ApplicationFailure.create({ type: ErrorCode.DECODE_TIMEOUT, message: limit, nonRetryable: true }), request.engine);
      }
      if (abortCause === 'replica') {
        await confirmStopped(adapter, slotId, log);
        const failure = replicaAbortFailure(dependencies.replicaAbort?.reason);
        log.warn({ tokens_out: tokens.length, code: failure.type, retried: !failure.nonRetryable }, 'task aborted: the replica stopped serving');
        throw failure.nonRetryable ? await endStreamWith(pusher, failure, request.engine) : failure;
      }
      const failure = toActivityFailure(error);
      throw failure.nonRetryable ? await endStreamWith(pusher, failure, request.engine) : failure;
    } finally {
      clearTimeout(wallTimer);
      clearTimeout(idleTimer);
      dependencies.replicaAbort?.removeEventListener('abort', onReplicaAbort);
      dependencies.slots.release(slotId);
    }
  };

  return {
    taskId,
    attempt,
    done: run().finally(() => forgetRelay?.()),
    get tokensOut(): number {
      return tokens.length;
    },
    abort: abortWith,
  };
}

async function confirmStopped(adapter: EngineAdapter, slotId: number | undefined, log: Logger): Promise<void> {
  try {
    await adapter.confirmStopped(slotId, SLOT_RELEASE_TIMEOUT_MS);
  } catch (error) {
    log.error({ err: error }, 'engine did not free the slot after an abort');
  }
}

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
