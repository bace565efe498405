/**
 * Hands each running task an engine slot id of its own. The worker takes at most as many tasks as the
 * engine has slots, so a free id always exists; pinning it (`id_slot`) lets a cancel confirm that exact
 * slot is free, which llama-server's stream cannot tell us (its partial chunks carry id_slot -1).
 */
export class SlotAllocator {
  private readonly free: number[];

  constructor(totalSlots: number) {
    this.free = Array.from({ length: totalSlots }, (_unused, index) => totalSlots - 1 - index);
  }

  acquire(): number | undefined {
    return this.free.pop();
  }

  release(slotId: number): void {
    if (!this.free.includes(slotId)) this.free.push(slotId);
  }
}
