import { Worker } from '@temporalio/worker';
import type { NativeConnection } from '@temporalio/worker';
import type { Logger } from 'pino';
import { Agent } from 'undici';
import { createEngineActivities } from '../../activities/engine-activity';
import type { PoolConfig } from '../../core/config';
import { formatReplicaIdentity } from '../../core/ids';
import { MAX_DRAIN_DEADLINE_MS } from '../../core/pool-state';
import { poolTaskQueue } from '../../core/task-queues';
import { SlotAllocator } from '../slot-allocator';
import type { LaunchedEngine } from './engine-launcher';
import { drainDeadlineAbort, shutdownAbort } from './replica-abort';
import type { ReplicaAbortReason } from './replica-abort';

export interface QueuePollerOptions {
  readonly pool: PoolConfig;
  readonly replicaId: string;
  readonly namespace: string;
  readonly connection: NativeConnection;
  readonly internalToken: string;
  readonly logger: Logger;
  /** Hears the engine's busy-slot count after every change. */
  readonly onSlotLoad?: ((busySlots: number) => void) | undefined;
}

/** How long in-flight tasks may finish after polling stops; then Temporal retries them elsewhere. */
const SHUTDOWN_GRACE_MS = 5_000;

/**
 * Polls the pool's task queue for one Ready engine, with as many activity slots as the engine has,
 * so the backlog stays in Temporal matching where priority and fairness apply. A new Temporal
 * Worker per Ready period: a replica that is not Ready does not poll at all (design §4).
 */
export class QueuePoller {
  private worker: Worker | undefined;
  private running: Promise<void> | undefined;
  private abort: AbortController | undefined;
  private busySlots = 0;
  /** While a drain waits for its deadline: a stop cuts it short to the shutdown grace. */
  private cutShort: (() => void) | undefined;

  constructor(private readonly options: QueuePollerOptions) {}

  /** Starts polling; the returned promise rejects only if the worker fails on its own. */
  async start(engine: LaunchedEngine): Promise<{ failed: Promise<Error> }> {
    const { pool, replicaId } = this.options;
    const slots = engine.properties.totalSlots;
    const dispatcher = new Agent({ keepAliveTimeout: 30_000, connections: Math.max(4, slots * 2) });
    const replica = { poolId: pool.id, replicaId, engineVersion: engine.properties.engineVersion, mockEngine: engine.mockEngine, modelRef: engine.modelRef };
    const abort = new AbortController();
    this.abort = abort;
    const onSlotLoad = (busySlots: number): void => {
      this.busySlots = busySlots;
      this.options.onSlotLoad?.(busySlots);
    };
    const worker = await Worker.create({
      connection: this.options.connection,
      namespace: this.options.namespace,
      taskQueue: poolTaskQueue(pool.id),
      identity: formatReplicaIdentity(replica),
      activities: createEngineActivities({
        adapter: engine.adapter,
        replica,
        internalToken: this.options.internalToken,
        dispatcher,
        slots: new SlotAllocator(slots, onSlotLoad),
        logger: this.options.logger,
        replicaAbort: abort.signal,
      }),
      maxConcurrentActivityTaskExecutions: slots,
      // No eager reservations: a slot is only taken by polling, after Temporal applied priority and fairness.
      maxEagerActivityReservationsPerWorkflowTask: 0,
      // Beyond the longest drain deadline: the poller ends in-flight tasks itself (replicaAbort) when a drain's
      // deadline or a stop's grace passes, so each task ends with a typed error rather than a bare cancel.
      shutdownGraceTime: MAX_DRAIN_DEADLINE_MS + SHUTDOWN_GRACE_MS,
    });
    this.worker = worker;
    let failedWith: (error: Error) => void = () => undefined;
    const failed = new Promise<Error>((resolve) => {
      failedWith = resolve;
    });
    this.running = worker
      .run()
      .catch((error: unknown) => failedWith(error instanceof Error ? error : new Error(String(error))))
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
   * A drain (ORCH-2101): stops polling at once, lets in-flight tasks finish, and at the deadline aborts
   * what still runs with POOL_UNAVAILABLE on its stream. Resolves with how many tasks it aborted.
   */
  async drain(deadlineMs: number): Promise<{ aborted: number }> {
    return this.stopPolling(Math.min(deadlineMs, MAX_DRAIN_DEADLINE_MS), drainDeadlineAbort(deadlineMs));
  }

  private async stopPolling(graceMs: number, reason: ReplicaAbortReason): Promise<{ aborted: number }> {
    const { worker, running, abort } = this;
    this.worker = undefined;
    this.running = undefined;
    this.abort = undefined;
    if (worker?.getState() === 'RUNNING') worker.shutdown();
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
