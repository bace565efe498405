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
  /** Dispatched task → [tenant, performance.now() at dispatch]. */
  readonly running: Map<string, { readonly tenant: string; readonly since: number }>;
  serviceMsEstimate: number;
}

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

  admitted(poolId: string, entry: QueuedEntry): void {
    this.state(poolId).queued.set(entry.taskId, entry);
  }

  dispatched(poolId: string, taskId: string): void {
    const state = this.state(poolId);
    const entry = state.queued.get(taskId);
    if (!entry || state.running.has(taskId)) return;
    state.queued.delete(taskId);
    state.running.set(taskId, { tenant: entry.tenant, since: performance.now() });
  }

  finished(poolId: string, taskId: string): void {
    const state = this.state(poolId);
    state.queued.delete(taskId);
    const running = state.running.get(taskId);
    if (!running) return;
    state.running.delete(taskId);
    state.serviceMsEstimate += SERVICE_EWMA_WEIGHT * (performance.now() - running.since - state.serviceMsEstimate);
  }

  queuedTasks(poolId: string): readonly QueuedEntry[] {
    return [...this.state(poolId).queued.values()];
  }

  queuedCount(poolId: string, priority: Priority): number {
    let count = 0;
    for (const entry of this.state(poolId).queued.values()) if (entry.priority === priority) count += 1;
    return count;
  }

  /** Whether the task is still queued or running here (tenant quotas release what left). */
  has(poolId: string, taskId: string): boolean {
    const state = this.state(poolId);
    return state.queued.has(taskId) || state.running.has(taskId);
  }

  runningCount(poolId: string): number {
    return this.state(poolId).running.size;
  }

  tenantUsage(poolId: string): Map<string, { queued: number; running: number }> {
    const usage = new Map<string, { queued: number; running: number }>();
    const state = this.state(poolId);
    const entryFor = (tenant: string) => {
      let entry = usage.get(tenant);
      if (!entry) usage.set(tenant, (entry = { queued: 0, running: 0 }));
      return entry;
    };
    for (const queued of state.queued.values()) entryFor(queued.tenant).queued += 1;
    for (const running of state.running.values()) entryFor(running.tenant).running += 1;
    return usage;
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
      state = { queued: new Map(), running: new Map(), serviceMsEstimate: INITIAL_SERVICE_MS };
      this.pools.set(poolId, state);
    }
    return state;
  }
}
