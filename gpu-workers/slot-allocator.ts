/**
 * Hands each running task an engine slot id of its own. The worker takes at most as many tasks as the
 * engine has slots, so a free id always exists; pinning it (`id_slot`) lets a cancel confirm that exact
 * slot is free, which llama-server's stream cannot tell us (its partial chunks carry id_slot -1).
 */
export class SlotAllocator {
  private readonly free: number[];
  private busy = 0;
  private readonly freedListeners = new Set<() => void>();

  /** `onLoad` hears the number of busy slots after every change (the replica publishes it, ORCH-3019). */
  constructor(
    private readonly totalSlots: number,
    private readonly onLoad: (busySlots: number) => void = () => undefined,
  ) {
    this.free = Array.from({ length: totalSlots }, (_unused, index) => totalSlots - 1 - index);
  }

  get busySlots(): number {
    return this.busy;
  }

  get slotCount(): number {
    return this.totalSlots;
  }

  /**
   * A slot id, or undefined when every slot is taken (the engine then picks an idle one itself). A free
   * `preferred` slot (where the session's KV is) wins; else the free slot with the lowest `cost`
   * (KV residency: an empty slot, then the least recently used session's); else the last freed.
   */
  acquire(preferred?: number, cost?: (slotId: number) => number): number | undefined {
    this.busy += 1;
    this.onLoad(this.busy);
    let at = preferred === undefined ? -1 : this.free.indexOf(preferred);
    if (at < 0 && cost !== undefined && this.free.length > 1) {
      at = this.free.length - 1;
      for (let index = this.free.length - 2; index >= 0; index -= 1) {
        if (cost(this.free[index] ?? 0) < cost(this.free[at] ?? 0)) at = index;
      }
    }
    if (at < 0) return this.free.pop();
    return this.free.splice(at, 1)[0];
  }

  release(slotId: number | undefined): void {
    if (slotId !== undefined && !this.free.includes(slotId)) this.free.push(slotId);
    this.busy = Math.max(0, this.busy - 1);
    this.onLoad(this.busy);
    for (const listener of [...this.freedListeners]) listener();
  }

  /** Hears every release (the replica's lane polls only while the engine has a free slot). */
  onFreed(listener: () => void): () => void {
    this.freedListeners.add(listener);
    return () => this.freedListeners.delete(listener);
  }
}
