import type { Logger } from 'pino';
import { Agent } from 'undici';
import type { Priority } from '../../core/engines';
import type { ReplicaStatus } from '../../core/replica-status';
import type { TaskWorkflowInput } from '../../core/task-workflow-contract';
import { callReplicaListener } from '../replica-listener';
import type { ReplicaDirectory } from '../replica-directory';

export interface FastStarterOptions {
  readonly replicas: Pick<ReplicaDirectory, 'replicas'>;
  readonly internalToken: string;
  /** config.placement.fast_start. */
  readonly enabled: boolean;
  /** The placement's lane wait (config.placement.affinity_wait_ms): unused by a fast start, kept for the shape of placements. */
  readonly waitMs: number;
  /** Tasks of each class queued for the pool right now (this gateway's ledger and Temporal's backlog). */
  readonly depth: (poolId: string) => Readonly<Record<Priority, number>>;
  readonly logger: Logger;
}

/** A replica that refused (full) is not asked again before the directory could have seen it free up. */
const REFUSED_BACKOFF_MS = 250;
/** A replica that did not answer is left alone longer: it may be gone. */
const UNREACHABLE_BACKOFF_MS = 5_000;
const REQUEST_TIMEOUT_MS = 1_000;
/** Replicas asked per task: past two refusals the pool is busy and the queue is the right place. */
const MAX_TRIES = 2;

/**
 * The gateway's half of fast start (.specs/decisions/2026-12-06-fast-start.md): when nothing of equal or
 * higher priority waits for the pool, asks a Ready replica with a free slot to start decoding the task
 * before its workflow is written. The replica decides (it alone knows its slots now); a refusal costs one
 * loopback request and the task takes the queue as before.
 */
export class FastStarter {
  private readonly dispatcher = new Agent({ connections: 64, keepAliveTimeout: 30_000, headersTimeout: REQUEST_TIMEOUT_MS, bodyTimeout: REQUEST_TIMEOUT_MS });
  private readonly leftAloneUntil = new Map<string, number>();
  private rotation = 0;
  /** Tasks this gateway fast-started and still holds → their replica's listener. */
  private readonly started = new Map<string, string>();
  /** Tasks between admission and a replica's answer: they count as queued but are not waiting for the queue. */
  private readonly trying = new Map<string, { readonly poolId: string; readonly priority: Priority }>();

  constructor(private readonly options: FastStarterOptions) {}

  /**
   * The task's input placed on the replica that started it, or undefined (the task takes the queue). A
   * planned placement (session affinity, policy pin) is honoured: only that replica is asked.
   */
  async start(input: TaskWorkflowInput): Promise<TaskWorkflowInput | undefined> {
    const { request: task, poolId } = input;
    if (!this.options.enabled || this.somethingWaits(poolId, task.task_id, task.priority)) return undefined;
    const candidates = this.candidates(input);
    if (candidates.length === 0) return undefined;
    this.trying.set(task.task_id, { poolId, priority: task.priority });
    try {
      for (const replica of candidates.slice(0, MAX_TRIES)) {
        const url = replica.fast_start_url;
        if (typeof url !== 'string') continue;
        const placed: TaskWorkflowInput = {
          ...input,
          placement: { replicaId: replica.replica_id, waitMs: this.options.waitMs, reason: input.placement?.reason ?? 'fast-start', fastStartUrl: url },
        };
        if (await this.ask(replica, placed)) {
          this.started.set(task.task_id, url);
          return placed;
        }
      }
      return undefined;
    } finally {
      this.trying.delete(task.task_id);
    }
  }

  /**
   * Stops a run this gateway started: its workflow could not be written (or already existed), or the
   * client cancelled — the replica aborts the engine request now, not at the run's next token. Best effort.
   */
  async withdraw(taskId: string): Promise<void> {
    const url = this.started.get(taskId);
    if (url === undefined) return;
    this.started.delete(taskId);
    try {
      await callReplicaListener(url, { method: 'DELETE', path: `/internal/v1/fast-starts/${encodeURIComponent(taskId)}`, internalToken: this.options.internalToken, dispatcher: this.dispatcher });
    } catch (error) {
      this.options.logger.warn({ err: error, job_id: taskId }, 'fast-started run not withdrawn; the replica gives it up uncollected');
    }
  }

  /** The task left this gateway's books (ended, cancelled): its run is no longer this gateway's to withdraw. */
  forget(taskId: string): void {
    this.started.delete(taskId);
  }

  /** Idempotent: a gateway may be closed twice (tests, shutdown after a failed start). */
  close(): Promise<void> {
    if (this.dispatcher.closed || this.dispatcher.destroyed) return Promise.resolve();
    return this.dispatcher.close();
  }

  /** Anything of equal or higher priority still queued, other than tasks that are themselves being fast-started. */
  private somethingWaits(poolId: string, taskId: string, priority: Priority): boolean {
    const depth = this.options.depth(poolId);
    const counts = (candidate: Priority): boolean => candidate === 'interactive' || priority === 'batch';
    let ahead = (counts('interactive') ? depth.interactive : 0) + (counts('batch') ? depth.batch : 0);
    // The task itself entered the ledger at admission.
    ahead -= 1;
    for (const [other, entry] of this.trying) if (other !== taskId && entry.poolId === poolId && counts(entry.priority)) ahead -= 1;
    return ahead > 0;
  }

  private candidates(input: TaskWorkflowInput): ReplicaStatus[] {
    const now = Date.now();
    const usable = (replica: ReplicaStatus): boolean =>
      replica.ready &&
      typeof replica.fast_start_url === 'string' &&
      replica.model_ref === input.request.model_ref &&
      replica.slots_busy < replica.slots_total &&
      (this.leftAloneUntil.get(replica.replica_id) ?? 0) <= now;
    const replicas = this.options.replicas.replicas(input.poolId).filter(usable);
    const planned = input.placement?.replicaId;
    if (planned !== undefined) return replicas.filter((replica) => replica.replica_id === planned);
    const load = (replica: ReplicaStatus): number => replica.slots_busy / Math.max(1, replica.slots_total);
    // Ties (idle replicas, or a directory that has not seen the last starts yet) rotate, so equally loaded
    // replicas share the work instead of the first in id order taking all of it.
    const rotation = this.rotation++ % Math.max(1, replicas.length);
    const rotated = [...replicas.slice(rotation), ...replicas.slice(0, rotation)];
    return rotated.sort((left, right) => load(left) - load(right));
  }

  private async ask(replica: ReplicaStatus, input: TaskWorkflowInput): Promise<boolean> {
    const url = replica.fast_start_url;
    if (!url) return false;
    try {
      const response = await callReplicaListener(url, { method: 'POST', path: '/internal/v1/fast-starts', body: input, internalToken: this.options.internalToken, dispatcher: this.dispatcher });
      if (response.statusCode === 202) return true;
      this.leftAloneUntil.set(replica.replica_id, Date.now() + REFUSED_BACKOFF_MS);
      if (response.statusCode !== 409) this.options.logger.warn({ replica_id: replica.replica_id, status: response.statusCode }, 'fast start refused');
      return false;
    } catch (error) {
      this.leftAloneUntil.set(replica.replica_id, Date.now() + UNREACHABLE_BACKOFF_MS);
      this.options.logger.warn({ err: error, replica_id: replica.replica_id }, 'fast start: replica unreachable; the task takes the queue');
      return false;
    }
  }
}
