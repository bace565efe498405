import type { ActivitySlotInfo, CustomSlotSupplier, SlotPermit } from '@temporalio/worker';
import type { SlotAllocator } from '../slot-allocator';

/**
 * The lane's one activity slot, granted only while the engine has a free slot (placement ADR). A busy
 * replica therefore does not poll its lane, and a placed task falls back to the pool queue after its
 * bounded wait instead of queueing inside the engine. The pool-queue worker can still fill the engine
 * while the lane holds its permit and polls, so the engine sees at most one request beyond its slots.
 */
export class LaneSlotGate implements CustomSlotSupplier<ActivitySlotInfo> {
  readonly type = 'custom' as const;
  private held = false;

  constructor(private readonly slots: Pick<SlotAllocator, 'busySlots' | 'slotCount' | 'onFreed'>) {}

  async reserveSlot(_context: unknown, abortSignal: AbortSignal): Promise<SlotPermit> {
    while (this.held || this.slots.busySlots >= this.slots.slotCount) {
      await this.nextRelease(abortSignal);
    }
    this.held = true;
    return {};
  }

  /** No eager tasks on a lane. */
  tryReserveSlot(): SlotPermit | null {
    return null;
  }

  markSlotUsed(): void {
    // The engine slot itself is taken by the activity (SlotAllocator.acquire).
  }

  releaseSlot(): void {
    this.held = false;
    this.release?.();
  }

  private release: (() => void) | undefined;

  private nextRelease(abortSignal: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const done = (): void => {
        unsubscribe();
        abortSignal.removeEventListener('abort', onAbort);
        this.release = undefined;
        resolve();
      };
      const onAbort = (): void => {
        unsubscribe();
        this.release = undefined;
        const error = new Error('slot reservation aborted');
        error.name = 'AbortError';
        reject(error);
      };
      const unsubscribe = this.slots.onFreed(done);
      this.release = done;
      if (abortSignal.aborted) onAbort();
      else abortSignal.addEventListener('abort', onAbort, { once: true });
    });
  }
}
