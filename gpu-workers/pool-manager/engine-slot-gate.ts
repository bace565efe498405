import type { ActivitySlotInfo, CustomSlotSupplier, SlotMarkUsedContext, SlotPermit, SlotReleaseContext } from '@temporalio/worker';
import type { SlotAllocator } from '../slot-allocator';

type EngineSlots = Pick<SlotAllocator, 'busySlots' | 'slotCount' | 'onFreed'>;

/**
 * A Temporal activity slot supplier that grants poll permits from the engine's real slot state: a
 * Temporal worker reserves a permit before it polls, so a permit granted is a task that may arrive.
 * Subclasses say how many permits the engine can take now; every release (a permit, an engine slot)
 * wakes the reservations waiting and they check again.
 */
abstract class EngineSlotGate implements CustomSlotSupplier<ActivitySlotInfo> {
  readonly type = 'custom' as const;
  /** Permits out: polling or running a task. */
  protected held = 0;
  /** Permits that received a task (markSlotUsed) and have not been released. */
  protected used = 0;
  private readonly waiting = new Set<() => void>();

  constructor(protected readonly slots: EngineSlots) {}

  protected abstract permits(): number;

  async reserveSlot(_context: unknown, abortSignal: AbortSignal): Promise<SlotPermit> {
    while (this.held >= this.permits()) await this.nextRelease(abortSignal);
    this.held += 1;
    return {};
  }

  /** No eager activities: every task is matched by Temporal, after priority and fairness. */
  tryReserveSlot(): SlotPermit | null {
    return null;
  }

  markSlotUsed(_context: SlotMarkUsedContext<ActivitySlotInfo>): void {
    // The engine slot itself is taken by the activity (SlotAllocator.acquire).
    this.used += 1;
  }

  releaseSlot(context?: SlotReleaseContext<ActivitySlotInfo>): void {
    this.held = Math.max(0, this.held - 1);
    if (context?.slotInfo !== undefined) this.used = Math.max(0, this.used - 1);
    for (const wake of [...this.waiting]) wake();
  }

  private nextRelease(abortSignal: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const cleanup = (): void => {
        unsubscribeSlots();
        abortSignal.removeEventListener('abort', onAbort);
        this.waiting.delete(done);
      };
      const done = (): void => {
        cleanup();
        resolve();
      };
      const onAbort = (): void => {
        cleanup();
        // The signal's own reason: the SDK logs any other rejection of an aborted reservation as an error.
        reject(abortSignal.reason as Error);
      };
      const unsubscribeSlots = this.slots.onFreed(done);
      this.waiting.add(done);
      if (abortSignal.aborted) onAbort();
      else abortSignal.addEventListener('abort', onAbort, { once: true });
    });
  }
}

/**
 * The pool-queue worker's permits: the engine's slots less those taken by work that did not come through
 * this worker (fast-started runs, the lane's placed tasks). Without it a replica whose slots a fast
 * start just took would still poll the pool queue and pull queued tasks into the engine, where they wait
 * outside Temporal's priority and fairness; with it, at most the one poll already out when the slot was
 * taken can bring a task beyond the engine's slots.
 */
export class PoolSlotGate extends EngineSlotGate {
  protected permits(): number {
    const takenByOthers = Math.max(0, this.slots.busySlots - this.used);
    return this.slots.slotCount - takenByOthers;
  }
}

/**
 * The lane's one permit (placement ADR), granted only while the engine has a free slot, so a busy
 * replica does not poll its lane and a placed task falls back to the pool queue after its bounded wait
 * instead of queueing inside the engine.
 */
export class LaneSlotGate extends EngineSlotGate {
  protected permits(): number {
    return this.slots.busySlots < this.slots.slotCount ? 1 : 0;
  }
}
