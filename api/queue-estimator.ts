import type { Priority } from '../core/engines';

interface PoolLedger {
  /** Admitted, not yet dispatched, in admission order. */
  readonly queued: Map<string, Priority>;
  /** Dispatched task → dispatch time (performance.now()). */
  readonly running: Map<string, number>;
  serviceMsEstimate: number;
}

const SERVICE_EWMA_WEIGHT = 0.2;
const INITIAL_SERVICE_MS = 1_000;

export interface QueueEstimate {
  readonly queuePosition: number;
  readonly predictedStartMs: number;
}

/**
 * What this gateway knows about each pool's queue, for `queue_position` and `predicted_start_ms`
 * (ORCH-3029): tasks ahead of a new one are the queued tasks of a class dispatched no later than its
 * own (interactive before batch); the start estimate spreads them over the pool's slots at the
 * measured mean service time. It counts only tasks admitted here.
 */
export class QueueEstimator {
  private readonly pools = new Map<string, PoolLedger>();
  private readonly slotsByPool: ReadonlyMap<string, number>;

  constructor(slotsByPool: ReadonlyMap<string, number>) {
    this.slotsByPool = slotsByPool;
  }

  estimate(poolId: string, priority: Priority): QueueEstimate {
    const ledger = this.ledger(poolId);
    let ahead = 0;
    for (const queuedPriority of ledger.queued.values()) {
      if (priority === 'batch' || queuedPriority === 'interactive') ahead += 1;
    }
    const slots = Math.max(1, this.slotsByPool.get(poolId) ?? 1);
    const waitRounds = Math.max(0, ahead + ledger.running.size - slots + 1);
    return { queuePosition: ahead, predictedStartMs: Math.round((waitRounds * ledger.serviceMsEstimate) / slots) };
  }

  admitted(poolId: string, taskId: string, priority: Priority): void {
    this.ledger(poolId).queued.set(taskId, priority);
  }

  dispatched(poolId: string, taskId: string): void {
    const ledger = this.ledger(poolId);
    if (ledger.queued.delete(taskId) || !ledger.running.has(taskId)) ledger.running.set(taskId, performance.now());
  }

  finished(poolId: string, taskId: string): void {
    const ledger = this.ledger(poolId);
    ledger.queued.delete(taskId);
    const dispatchedAt = ledger.running.get(taskId);
    if (dispatchedAt === undefined) return;
    ledger.running.delete(taskId);
    const serviceMs = performance.now() - dispatchedAt;
    ledger.serviceMsEstimate += SERVICE_EWMA_WEIGHT * (serviceMs - ledger.serviceMsEstimate);
  }

  private ledger(poolId: string): PoolLedger {
    let ledger = this.pools.get(poolId);
    if (!ledger) {
      ledger = { queued: new Map(), running: new Map(), serviceMsEstimate: INITIAL_SERVICE_MS };
      this.pools.set(poolId, ledger);
    }
    return ledger;
  }
}
