/**
 * Which session's KV each engine slot holds (ORCH-3022). llama-server keeps one sequence's KV per slot,
 * so at most one session per slot and at most `slotCount` resident sessions; a task that takes a slot
 * holding another session's KV overwrites it — an eviction, counted. Least recently used first.
 *
 * Invariants: `bySession` and `bySlot` mirror each other; `bySession` iterates least recently used
 * first (Map insertion order; every use re-inserts).
 */
export interface ResidentSession {
  readonly slotId: number;
  readonly cachedTokens: number;
  readonly bytes: number;
}

export class KvResidency {
  private readonly bySession = new Map<string, ResidentSession>();
  private readonly bySlot = new Map<number, string>();
  private evictions = 0;

  constructor(private readonly bytesPerToken: number) {}

  get residentSessions(): number {
    return this.bySession.size;
  }

  get evictionsTotal(): number {
    return this.evictions;
  }

  get residentBytes(): number {
    let total = 0;
    for (const resident of this.bySession.values()) total += resident.bytes;
    return total;
  }

  slotOf(session: string): number | undefined {
    return this.bySession.get(session)?.slotId;
  }

  /** Lower is a better slot to give a session that has none: an empty slot, then the least recently used. */
  reuseCost(slotId: number): number {
    const holder = this.bySlot.get(slotId);
    if (holder === undefined) return -1;
    let rank = 0;
    for (const session of this.bySession.keys()) {
      if (session === holder) return rank;
      rank += 1;
    }
    return rank;
  }

  /** A task of `session` now runs on `slotId`: another session's KV there is evicted (counted). */
  claim(session: string, slotId: number): void {
    const holder = this.bySlot.get(slotId);
    if (holder !== undefined && holder !== session) {
      this.bySession.delete(holder);
      this.evictions += 1;
    }
    const previous = this.bySession.get(session);
    // A session that moved slots leaves its old slot's KV behind, unowned.
    if (previous !== undefined && previous.slotId !== slotId) this.bySlot.delete(previous.slotId);
    this.bySlot.set(slotId, session);
  }

  /** After a good turn: the slot keeps `cachedTokens` of the session's KV. */
  record(session: string, slotId: number, cachedTokens: number): ResidentSession {
    this.claim(session, slotId);
    const resident = { slotId, cachedTokens, bytes: cachedTokens * this.bytesPerToken };
    this.bySession.delete(session);
    this.bySession.set(session, resident);
    return resident;
  }

  /** Forgets a session (DELETE, or a failed turn that left the slot in an unknown state). */
  forget(session: string): ResidentSession | undefined {
    const resident = this.bySession.get(session);
    if (resident === undefined) return undefined;
    this.bySession.delete(session);
    if (this.bySlot.get(resident.slotId) === session) this.bySlot.delete(resident.slotId);
    return resident;
  }
}

/** The replica-side key of a session: tenants never share one (ORCH-3035). */
export function kvSessionKey(tenant: string, sessionId: string): string {
  return `${tenant}\u0000${sessionId}`;
}
