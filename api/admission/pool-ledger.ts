import type { Priority } from '../../core/engines';

export interface QueuedEntry {
  readonly taskId: string;
  readonly priority: Priority;
  readonly tenant: string;
  readonly maxTokens: number;
  /** performance.now() at admission. */
  readonly admittedAt: number;
}

interface PoolState {
  /** Admitted here, not yet dispatched; a Map keeps admission order, oldest first. */
  readonly queued: Map<string, QueuedEntry>;
  /** Counts kept as tasks come and go: admission runs on every request, so it never walks the queue. */
  readonly queuedByPriority: Record<Priority, number>;
  readonly usageByTenant: Map<string, { queued: number; running: number }>;
  /** Dispatched task → [tenant, performance.now() at dispatch]. */
  readonly running: Map<string, { readonly tenant: string; readonly since: number }>;
  /** Tasks withdrawn while queued in Temporal (cancelled, evicted), oldest first, and their count by class: see `ghostCount`. */
  readonly ghosts: { readonly priority: Priority; readonly at: number }[];
  readonly ghostsByPriority: Record<Priority, number>;
  serviceMsEstimate: number;
}

/**
 * How long a task withdrawn while queued is assumed to still be in Temporal's backlog count. Matching
 * drops a cancelled activity task only when a poller reaches it, so a stalled queue keeps counting it;
 * a moving queue skips it within a dispatch or two. Past this age the count is trusted again.
 */
const GHOST_TTL_MS = 30_000;

const SERVICE_EWMA_WEIGHT = 0.2;
const INITIAL_SERVICE_MS = 1_000;

export interface QueueEstimate {
  readonly queuePosition: number;
  readonly predictedStartMs: number;
}

/**
 * What this gateway knows of each pool's tasks: the ones it admitted that wait in the queue (in order),
 * the ones running, and the mean service time. Other gateways' tasks reach admission through
 * Temporal's backlog count instead (`temporal-backlog.ts`).
 */
export class PoolLedger {
  private readonly pools = new Map<string, PoolState>();
  private readonly forgetListeners: ((taskId: string) => void)[] = [];

  /** Called whenever a task leaves the ledger (ended, cancelled, evicted or refused). */
  onForget(listener: (taskId: string) => void): void {
    this.forgetListeners.push(listener);
  }

  admitted(poolId: string, entry: QueuedEntry): void {
    const state = this.state(poolId);
    if (state.queued.has(entry.taskId)) return;
    state.queued.set(entry.taskId, entry);
    state.queuedByPriority[entry.priority] += 1;
    usageOf(state, entry.tenant).queued += 1;
  }

  dispatched(poolId: string, taskId: string): void {
    const state = this.state(poolId);
    const entry = state.queued.get(taskId);
    if (!entry || state.running.has(taskId)) return;
    removeQueued(state, entry);
    state.running.set(taskId, { tenant: entry.tenant, since: performance.now() });
    usageOf(state, entry.tenant).running += 1;
  }

  finished(poolId: string, taskId: string): void {
    const state = this.state(poolId);
    const entry = state.queued.get(taskId);
    if (entry) removeQueued(state, entry);
    const running = state.running.get(taskId);
    if (running) {
      state.running.delete(taskId);
      releaseUsage(state, running.tenant, 'running');
    }
    if (entry || running) for (const listener of this.forgetListeners) listener(taskId);
    if (!running) return;
    state.serviceMsEstimate += SERVICE_EWMA_WEIGHT * (performance.now() - running.since - state.serviceMsEstimate);
  }

  /**
   * A started task leaves the queue before dispatch (a cancel, a drop-lru/shed eviction). Unlike `finished`
   * it leaves a ghost: Temporal's approximate backlog still counts the task until a poller skips it.
   */
  withdrawn(poolId: string, taskId: string): void {
    const state = this.state(poolId);
    const entry = state.queued.get(taskId);
    this.finished(poolId, taskId);
    if (!entry) return;
    state.ghosts.push({ priority: entry.priority, at: performance.now() });
    state.ghostsByPriority[entry.priority] += 1;
  }

  /** Recent withdrawals of one class that Temporal's backlog count may still include. */
  ghostCount(poolId: string, priority: Priority): number {
    // Runs on every admission: expire from the front, count by class, never walk the list.
    const { ghosts, ghostsByPriority } = this.state(poolId);
    const horizon = performance.now() - GHOST_TTL_MS;
    for (let oldest = ghosts[0]; oldest !== undefined && oldest.at < horizon; oldest = ghosts[0]) {
      ghosts.shift();
      ghostsByPriority[oldest.priority] -= 1;
    }
    return ghostsByPriority[priority];
  }

  /** Queued tasks oldest first, optionally of one class, at most `limit` of them (stops walking there). */
  queuedTasks(poolId: string, limit = Number.POSITIVE_INFINITY, priority?: Priority): QueuedEntry[] {
    const tasks: QueuedEntry[] = [];
    for (const entry of this.state(poolId).queued.values()) {
      if (tasks.length >= limit) break;
      if (priority === undefined || entry.priority === priority) tasks.push(entry);
    }
    return tasks;
  }

  queuedCount(poolId: string, priority: Priority): number {
    return this.state(poolId).queuedByPriority[priority];
  }

  /** Whether the task is still queued or running here (tenant quotas release what left). */
  has(poolId: string, taskId: string): boolean {
    const state = this.state(poolId);
    return state.queued.has(taskId) || state.running.has(taskId);
  }

  runningCount(poolId: string): number {
    return this.state(poolId).running.size;
  }

  tenantUsage(poolId: string): ReadonlyMap<string, { readonly queued: number; readonly running: number }> {
    return this.state(poolId).usageByTenant;
  }

  /**
   * `queue_position` and `predicted_start_ms` (ORCH-3029): tasks ahead of a new one are those of a class
   * dispatched no later than its own (interactive before batch); the wait spreads them over the pool's
   * slots at the measured mean service time.
   */
  estimate(poolId: string, priority: Priority, depth: { interactive: number; batch: number }, slots: number): QueueEstimate {
    const state = this.state(poolId);
    const ahead = priority === 'interactive' ? depth.interactive : depth.interactive + depth.batch;
    const usableSlots = Math.max(1, slots);
    const waitRounds = Math.max(0, ahead + state.running.size - usableSlots + 1);
    return { queuePosition: ahead, predictedStartMs: Math.round((waitRounds * state.serviceMsEstimate) / usableSlots) };
  }

  private state(poolId: string): PoolState {
    let state = this.pools.get(poolId);
    if (!state) {
      state = {
        queued: new Map(),
        queuedByPriority: { interactive: 0, batch: 0 },
        usageByTenant: new Map(),
        running: new Map(),
        ghosts: [],
        ghostsByPriority: { interactive: 0, batch: 0 },
        serviceMsEstimate: INITIAL_SERVICE_MS,
      };
      this.pools.set(poolId, state);
    }
    return state;
  }
}

function usageOf(state: PoolState, tenant: string): { queued: number; running: number } {
  let usage = state.usageByTenant.get(tenant);
  if (!usage) state.usageByTenant.set(tenant, (usage = { queued: 0, running: 0 }));
  return usage;
}

function releaseUsage(state: PoolState, tenant: string, kind: 'queued' | 'running'): void {
  const usage = usageOf(state, tenant);
  usage[kind] -= 1;
  if (usage.queued === 0 && usage.running === 0) state.usageByTenant.delete(tenant);
}

function removeQueued(state: PoolState, entry: QueuedEntry): void {
  state.queued.delete(entry.taskId);
  state.queuedByPriority[entry.priority] -= 1;
  releaseUsage(state, entry.tenant, 'queued');
}
