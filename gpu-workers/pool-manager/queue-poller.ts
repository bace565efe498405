import { setMaxListeners } from 'node:events';
import { Worker } from '@temporalio/worker';
import type { NativeConnection } from '@temporalio/worker';
import type { Logger } from 'pino';
import { Agent } from 'undici';
import { createEngineActivities } from '../../activities/engine-activity';
import { startGeneration, type GenerationDependencies } from '../../activities/engine-generation';
import type { TaskWorkflowInput } from '../../core/task-workflow-contract';
import type { PoolConfig } from '../../core/config';
import { formatReplicaIdentity } from '../../core/ids';
import { MAX_DRAIN_DEADLINE_MS } from '../../core/pool-state';
import { poolTaskQueue } from '../../core/task-queues';
import { describeQuant } from '../models/model-quant';
import { describeTensorSplit } from '../../core/tensor-split';
import { replicaSetDigest, replicaSetKeyOf } from './pool-queue-membership';
import { FastStartRuns } from '../fast-start/fast-start-runs';
import type { FastStartHandler, FastStartServer, FastStartVerdict } from '../fast-start/fast-start-server';
import { LiveRelays } from '../live-relays';
import { KvResidency } from '../kv-residency';
import { SlotAllocator } from '../slot-allocator';
import type { LaunchedEngine } from './engine-launcher';
import { createLaneWorker } from './lane-worker';
import { PoolSlotGate } from './engine-slot-gate';
import { drainDeadlineAbort, shutdownAbort } from './replica-abort';
import type { ReplicaAbortReason } from './replica-abort';
import type { ReplicaEventCounters } from './replica-events';
import { EngineLoadSampler, type EngineLoad } from './engine-load-sampler';

export interface QueuePollerOptions {
  readonly pool: PoolConfig;
  readonly replicaId: string;
  readonly namespace: string;
  readonly connection: NativeConnection;
  readonly internalToken: string;
  readonly logger: Logger;
  /** Hears the engine's busy-slot count after every change. */
  readonly onSlotLoad?: ((busySlots: number) => void) | undefined;
  /** Hears the engine's KV use and in-flight tokens, read from its slots every `engineLoadIntervalMs` while Ready. */
  readonly onEngineLoad?: ((load: EngineLoad) => void) | undefined;
  /** Default 1 s: the replica publishes its load at most that often anyway. */
  readonly engineLoadIntervalMs?: number | undefined;
  readonly events?: ReplicaEventCounters | undefined;
}

/** How long in-flight tasks may finish after polling stops; then Temporal retries them elsewhere. */
const SHUTDOWN_GRACE_MS = 5_000;
/**
 * Beyond the longest drain deadline: the poller ends in-flight tasks itself (replicaAbort) when a drain's
 * deadline or a stop's grace passes, so each task ends with a typed error rather than a bare cancel.
 */
const WORKER_SHUTDOWN_GRACE = `${MAX_DRAIN_DEADLINE_MS + SHUTDOWN_GRACE_MS}ms`;

/**
 * Polls the pool's task queue for one Ready engine, with as many activity slots as the engine has,
 * so the backlog stays in Temporal matching where priority and fairness apply, and the replica's own
 * lane for placed tasks. New Temporal Workers per Ready period: a replica that is not Ready does not
 * poll at all (design §4).
 */
export class QueuePoller {
  private worker: Worker | undefined;
  private lane: Worker | undefined;
  private running: Promise<void> | undefined;
  private abort: AbortController | undefined;
  private busySlots = 0;
  /** While a drain waits for its deadline: a stop cuts it short to the shutdown grace. */
  private cutShort: (() => void) | undefined;
  /** The process's fast-start listener, once up; each Ready period installs its handler (ADR 2026-12-06). */
  private fastStart: FastStartServer | undefined;
  private fastStartHandler: FastStartHandler | undefined;
  private loadSampler: EngineLoadSampler | undefined;
  /** Every decoding run's token relay, for a gateway that takes a stream over (api/stream-handover.ts). */
  private readonly relays = new LiveRelays();

  constructor(private readonly options: QueuePollerOptions) {}

  /** The listener may come up after the first Ready period started: it then serves that period at once. */
  useFastStart(server: FastStartServer): void {
    this.fastStart = server;
    server.serve(this.fastStartHandler);
    server.handOverWith(this.relays);
  }

  /**
   * Starts polling; the returned promise rejects only if a worker fails on its own. `pollPoolQueue: false` is a
   * standby (pool-queue-membership.ts): another replica set serves the pool queue, so only the lane is polled.
   */
  async start(engine: LaunchedEngine, pollPoolQueue = true): Promise<{ failed: Promise<Error> }> {
    const { pool, replicaId } = this.options;
    const slots = engine.properties.totalSlots;
    const dispatcher = new Agent({ keepAliveTimeout: 30_000, connections: Math.max(4, slots * 2) });
    const replica = {
      poolId: pool.id,
      replicaId,
      engineVersion: engine.properties.engineVersion,
      mockEngine: engine.mockEngine,
      modelRef: engine.modelRef,
      // Once per Ready period: the engine may have been restarted on another file.
      quant: describeQuant(pool.quant, engine.properties.modelPath ?? pool.model),
      tensorSplit: describeTensorSplit(pool.devices, pool.tensor_split),
      // ORCH-3046: replicas of another set read it on the pool queue's pollers and keep off that queue.
      replicaSet: replicaSetDigest(replicaSetKeyOf(pool, engine)),
    };
    const abort = new AbortController();
    // Every running task listens on it: one per slot, plus the lane's and one per fast-started run.
    setMaxListeners(2 * slots + 2, abort.signal);
    this.abort = abort;
    const onSlotLoad = (busySlots: number): void => {
      this.busySlots = busySlots;
      this.options.onSlotLoad?.(busySlots);
    };
    const slotAllocator = new SlotAllocator(slots, onSlotLoad);
    const { capabilities } = engine.adapter;
    const generation: GenerationDependencies = {
      adapter: engine.adapter,
      replica,
      internalToken: this.options.internalToken,
      dispatcher,
      slots: slotAllocator,
      logger: this.options.logger,
      // Per Ready period: a restarted engine holds no KV. Sessions keep KV warm only where a task can be put
      // back on its slot and reuse the cached prefix; elsewhere each turn is evaluated in full.
      ...(capabilities.slotPinning && capabilities.promptCache ? { kv: new KvResidency(engine.kvBytesPerToken ?? 0) } : {}),
      events: this.options.events,
      replicaAbort: abort.signal,
      relays: this.relays,
    };
    const fastStarts = new FastStartRuns(this.options.logger);
    const activities = createEngineActivities(generation);
    const worker = !pollPoolQueue ? undefined : await Worker.create({
      connection: this.options.connection,
      namespace: this.options.namespace,
      taskQueue: poolTaskQueue(pool.id),
      identity: formatReplicaIdentity(replica),
      activities,
      // As many permits as the engine has free slots, less what fast starts and the lane took (engine-slot-gate.ts).
      tuner: {
        activityTaskSlotSupplier: new PoolSlotGate(slotAllocator),
        // The pool-queue worker runs no workflows, local activities or Nexus tasks; the SDK still wants a supplier for each.
        workflowTaskSlotSupplier: { type: 'fixed-size', numSlots: 1 },
        localActivityTaskSlotSupplier: { type: 'fixed-size', numSlots: 1 },
        nexusTaskSlotSupplier: { type: 'fixed-size', numSlots: 1 },
      },
      // A poll waiting per free slot, so a new task meets a poller (sync match, no backlog write).
      maxConcurrentActivityTaskPolls: Math.max(2, Math.min(slots, 64)),
      // No eager reservations: a slot is only taken by polling, after Temporal applied priority and fairness.
      maxEagerActivityReservationsPerWorkflowTask: 0,
      shutdownGraceTime: WORKER_SHUTDOWN_GRACE,
    });
    // Placed tasks (session affinity, policy pins) wait on this replica's own lane, polled only while Ready.
    let lane: Worker;
    try {
      lane = await createLaneWorker({ ...this.options, identity: formatReplicaIdentity(replica), activities, slots: slotAllocator, shutdownGraceTime: WORKER_SHUTDOWN_GRACE });
    } catch (error) {
      // A created worker stays registered on its queue until it has run: release it, or the next Ready period cannot poll.
      await worker?.runUntil(Promise.resolve()).catch(() => undefined);
      await dispatcher.close();
      throw error;
    }
    this.worker = worker;
    this.lane = lane;
    let failedWith: (error: Error) => void = () => undefined;
    const failed = new Promise<Error>((resolve) => {
      failedWith = resolve;
    });
    const onFailure = (error: unknown): void => failedWith(error instanceof Error ? error : new Error(String(error)));
    this.fastStartHandler = fastStartHandler(generation, fastStarts, replicaId, slotAllocator);
    this.fastStart?.serve(this.fastStartHandler);
    const { onEngineLoad } = this.options;
    // An engine that cannot say its load leaves the replica's figures null (policies see "unknown", not zero).
    const readLoad = engine.adapter.readLoad;
    if (onEngineLoad && readLoad) {
      this.loadSampler = new EngineLoadSampler(readLoad, this.options.engineLoadIntervalMs ?? 1_000, onEngineLoad, this.options.logger);
      this.loadSampler.start();
    }
    // Fast-started runs are in flight like the workers' activities: a drain or a stop waits for them too
    // (and aborts them at its deadline through the replica abort), and the relay stays open until they end.
    this.running = Promise.all([worker?.run().catch(onFailure), lane.run().catch(onFailure)])
      .then(() => fastStarts.whenIdle())
      .finally(() => dispatcher.close());
    return { failed };
  }

  /** Stops polling and waits for in-flight tasks (up to the grace time); then Temporal retries them elsewhere. */
  async stop(): Promise<void> {
    // A drain in progress keeps its tasks at most the shutdown grace from now, then they are retried elsewhere.
    this.cutShort?.();
    await this.stopPolling(SHUTDOWN_GRACE_MS, shutdownAbort(SHUTDOWN_GRACE_MS));
  }

  /**
   * A drain (ORCH-2101): stops polling at once (pool queue and lane), lets in-flight tasks finish, and at
   * the deadline aborts what still runs with POOL_UNAVAILABLE on its stream. Resolves with how many it aborted.
   */
  async drain(deadlineMs: number): Promise<{ aborted: number }> {
    return this.stopPolling(Math.min(deadlineMs, MAX_DRAIN_DEADLINE_MS), drainDeadlineAbort(deadlineMs));
  }

  private async stopPolling(graceMs: number, reason: ReplicaAbortReason): Promise<{ aborted: number }> {
    const { worker, lane, running, abort } = this;
    this.worker = undefined;
    this.lane = undefined;
    this.running = undefined;
    this.abort = undefined;
    // No new fast starts once polling stops; runs already started end with the replica's tasks.
    this.fastStartHandler = undefined;
    this.fastStart?.serve(undefined);
    this.loadSampler?.stop();
    this.loadSampler = undefined;
    if (worker?.getState() === 'RUNNING') worker.shutdown();
    if (lane?.getState() === 'RUNNING') lane.shutdown();
    let aborted = 0;
    const abortWith = (why: ReplicaAbortReason) => (): void => {
      aborted = this.busySlots;
      abort?.abort(why);
    };
    let timer = setTimeout(abortWith(reason), graceMs);
    if (running !== undefined) {
      this.cutShort = () => {
        clearTimeout(timer);
        timer = setTimeout(abortWith(shutdownAbort(SHUTDOWN_GRACE_MS)), SHUTDOWN_GRACE_MS);
      };
    }
    try {
      await running;
    } finally {
      clearTimeout(timer);
      this.cutShort = undefined;
    }
    return { aborted };
  }
}

/**
 * Accepts a fast start only where the queue would have sent the task anyway: this replica, its model, a
 * free engine slot. The slot is taken synchronously, so two concurrent fast starts never share one.
 */
function fastStartHandler(dependencies: GenerationDependencies, runs: FastStartRuns, replicaId: string, slots: SlotAllocator): FastStartHandler {
  const refuse = (reason: string): FastStartVerdict => ({ accepted: false, reason });
  return {
    start(input: TaskWorkflowInput): FastStartVerdict {
      if (input.placement?.replicaId !== replicaId) return refuse(`placed on another replica than ${replicaId}`);
      const modelRef = dependencies.replica.modelRef;
      if (modelRef !== undefined && input.request.model_ref !== modelRef) return refuse(`this replica serves ${modelRef}`);
      if (slots.busySlots >= slots.slotCount) return refuse('no free slot');
      if (runs.has(input.request.task_id)) return refuse('already running');
      // Attempt 1: the workflow collects this run's outcome instead of dispatching a first attempt.
      runs.register(startGeneration(dependencies, input, { attempt: 1, attemptOffset: 0 }));
      return { accepted: true };
    },
    withdraw: (taskId) => runs.withdraw(taskId),
    outcome: (taskId) => runs.outcome(taskId),
    // As the generation sends its prompt (engine-generation.ts): a chat is rendered by the engine's template first.
    async countPromptTokens(input) {
      const count = dependencies.adapter.countPromptTokens;
      if (!count) throw new Error(`the ${dependencies.adapter.engine} adapter cannot count prompt tokens`);
      return count('chat' in input ? { chat: input.chat } : input.prompt);
    },
  };
}
