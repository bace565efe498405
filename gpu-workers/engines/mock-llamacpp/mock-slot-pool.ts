/** Per-slot state, shaped after what llama-server reports on GET /slots. */
export interface MockSlot {
  readonly id: number;
  /** The task running on the slot, or the last one; -1 before the first. */
  idTask: number;
  isProcessing: boolean;
  seed: number;
  nDecoded: number;
  nRemain: number;
  params: Readonly<Record<string, unknown>>;
  /** What the slot's KV holds after its last request (prompt + output), like llama.cpp's slot cache. */
  cachedText: string;
  nCached: number;
  /** Tokens the slot's KV holds now (GET /slots `n_prompt_tokens`): the running task's prompt and output so far, else nCached. */
  nHeld: number;
}

export type SlotGrant = (slot: MockSlot) => void;

export interface SlotRequest {
  /** True when no slot was free and the request now waits (llama.cpp's "deferred"). */
  readonly deferred: boolean;
  /** Removes a still-waiting request from the queue; a no-op once granted. */
  withdraw(): void;
}

interface Waiter {
  readonly slotId: number | undefined;
  readonly grant: SlotGrant;
}

/**
 * N slots and a FIFO of deferred requests. Invariant: a waiter is queued only while no slot it
 * accepts is free, so `release` only has to offer the freed slot to the queue.
 */
export class MockSlotPool {
  readonly slots: readonly MockSlot[];
  private readonly waiters: Waiter[] = [];
  private nextTaskId = 0;
  private deferredSoFar = 0;

  constructor(slotCount: number) {
    this.slots = Array.from({ length: slotCount }, (_, id) => ({
      id,
      idTask: -1,
      isProcessing: false,
      seed: 0,
      nDecoded: 0,
      nRemain: 0,
      params: {},
      cachedText: '',
      nCached: 0,
      nHeld: 0,
    }));
  }

  get processingCount(): number {
    let count = 0;
    for (const slot of this.slots) if (slot.isProcessing) count++;
    return count;
  }

  get deferredCount(): number {
    return this.waiters.length;
  }

  get deferredTotal(): number {
    return this.deferredSoFar;
  }

  /** `slotId` pins one slot (llama.cpp `id_slot`); undefined takes the lowest idle one. */
  acquire(slotId: number | undefined, grant: SlotGrant): SlotRequest {
    const free = this.slots.find((slot) => !slot.isProcessing && (slotId === undefined || slot.id === slotId));
    if (free !== undefined) {
      this.occupy(free, grant);
      return { deferred: false, withdraw: () => undefined };
    }
    const waiter: Waiter = { slotId, grant };
    this.waiters.push(waiter);
    this.deferredSoFar++;
    return {
      deferred: true,
      withdraw: () => {
        const at = this.waiters.indexOf(waiter);
        if (at >= 0) this.waiters.splice(at, 1);
      },
    };
  }

  release(slot: MockSlot): void {
    slot.isProcessing = false;
    const at = this.waiters.findIndex((waiter) => waiter.slotId === undefined || waiter.slotId === slot.id);
    if (at < 0) return;
    const [waiter] = this.waiters.splice(at, 1);
    if (waiter !== undefined) this.occupy(slot, waiter.grant);
  }

  private occupy(slot: MockSlot, grant: SlotGrant): void {
    slot.isProcessing = true;
    slot.idTask = this.nextTaskId++;
    slot.nDecoded = 0;
    grant(slot);
  }
}
