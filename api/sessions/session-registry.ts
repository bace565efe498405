/**
 * One gateway's memory of short-lived sessions (ORCH-3021/3009): turns, lifetime, the replica that
 * served the session last (its affinity) and what that replica reported about the session's KV.
 * Keyed by (tenant, session_id) so two tenants never share or see a session. Bounded: at most
 * `maxEntries` sessions, least recently used forgotten first; no Temporal call per task.
 *
 * Invariants: `sessions` iterates least recently used first (Map insertion order; a touch re-inserts);
 * `pendingTasks` holds only tasks whose stream has not ended, at most `maxEntries` of them.
 */
export interface SessionLimits {
  readonly ttlMs: number;
  readonly maxTurns: number;
  readonly maxEntries: number;
}

export interface SessionKvReport {
  readonly replicaId: string;
  readonly kvWarmth: boolean;
  readonly kvBytes: number;
}

export interface SessionInfo {
  readonly ttl_ms_remaining: number;
  readonly turns: number;
  readonly kv_bytes: number;
  readonly kv_warmth: boolean;
  readonly kv_migrated: false;
  readonly replica_id: string | null;
}

export type TurnRefusal = { readonly kind: 'turns'; readonly maxTurns: number } | { readonly kind: 'expired'; readonly ttlMs: number };

interface SessionRecord {
  readonly firstTurnAtMs: number;
  turns: number;
  /** The replica whose last turn ended well: where the session's KV is (affinity). */
  replicaId: string | undefined;
  kvWarmth: boolean;
  kvBytes: number;
}

interface PendingTask {
  readonly key: string;
  replicaId: string | undefined;
  kv: SessionKvReport | undefined;
}

export class SessionRegistry {
  private readonly sessions = new Map<string, SessionRecord>();
  private readonly pendingTasks = new Map<string, PendingTask>();
  /** Sessions deleted here, until a new turn reuses the id: visibility records a delete only moments later. */
  private readonly deleted = new Set<string>();

  constructor(
    private readonly limits: SessionLimits,
    private readonly now: () => number = Date.now,
  ) {}

  get size(): number {
    return this.sessions.size;
  }

  /** Why the session may not take another turn, or undefined when it may (an unknown session may). */
  refusal(tenant: string, sessionId: string): TurnRefusal | undefined {
    const record = this.sessions.get(keyOf(tenant, sessionId));
    if (!record) return undefined;
    if (this.remainingMs(record) <= 0) return { kind: 'expired', ttlMs: this.limits.ttlMs };
    if (record.turns >= this.limits.maxTurns) return { kind: 'turns', maxTurns: this.limits.maxTurns };
    return undefined;
  }

  /** The replica the session's KV lives on, while the session is alive. */
  affinity(tenant: string, sessionId: string): string | undefined {
    const record = this.sessions.get(keyOf(tenant, sessionId));
    return record && this.remainingMs(record) > 0 ? record.replicaId : undefined;
  }

  /** Counts an admitted task as the session's next turn (the first one starts its lifetime). */
  recordTurn(tenant: string, sessionId: string, taskId: string): void {
    const key = keyOf(tenant, sessionId);
    this.deleted.delete(key);
    const record = this.sessions.get(key) ?? { firstTurnAtMs: this.now(), turns: 0, replicaId: undefined, kvWarmth: false, kvBytes: 0 };
    record.turns += 1;
    this.touch(key, record);
    this.pendingTasks.set(taskId, { key, replicaId: undefined, kv: undefined });
    while (this.pendingTasks.size > this.limits.maxEntries) this.pendingTasks.delete(this.pendingTasks.keys().next().value as string);
  }

  /** The replica a task was dispatched to (its `dispatched` metrics frame). */
  dispatched(taskId: string, replicaId: string): void {
    const pending = this.pendingTasks.get(taskId);
    if (pending) pending.replicaId = replicaId;
  }

  /** What the replica reported about the session's KV after the turn (its `kv` metrics frame). */
  kvReported(taskId: string, report: SessionKvReport): void {
    const pending = this.pendingTasks.get(taskId);
    if (pending) pending.kv = report;
  }

  /**
   * The task's stream ended. A good end makes its replica the session's last good replica (ORCH-3009);
   * an error or cancel leaves the affinity as it was.
   */
  taskEnded(taskId: string, good: boolean): void {
    const pending = this.pendingTasks.get(taskId);
    if (!pending) return;
    this.pendingTasks.delete(taskId);
    const record = this.sessions.get(pending.key);
    if (!record || !good) return;
    const replicaId = pending.kv?.replicaId ?? pending.replicaId;
    if (replicaId === undefined) return;
    record.replicaId = replicaId;
    record.kvWarmth = pending.kv?.kvWarmth ?? false;
    record.kvBytes = pending.kv?.kvBytes ?? 0;
  }

  info(tenant: string, sessionId: string): SessionInfo | undefined {
    const record = this.sessions.get(keyOf(tenant, sessionId));
    if (!record) return undefined;
    return {
      ttl_ms_remaining: Math.max(0, this.remainingMs(record)),
      turns: record.turns,
      kv_bytes: record.kvBytes,
      kv_warmth: record.kvWarmth,
      kv_migrated: false,
      replica_id: record.replicaId ?? null,
    };
  }

  /** Forgets the session; returns the replica that may still hold its KV. */
  forget(tenant: string, sessionId: string): { replicaId: string | undefined } | undefined {
    const key = keyOf(tenant, sessionId);
    const record = this.sessions.get(key);
    if (!record) return undefined;
    this.sessions.delete(key);
    this.markDeleted(key);
    return { replicaId: record.replicaId };
  }

  /** Records a delete of a session this gateway did not remember (found in visibility). */
  deletedElsewhere(tenant: string, sessionId: string): void {
    this.markDeleted(keyOf(tenant, sessionId));
  }

  /** Deleted through this gateway and not used since: known gone, whatever visibility says yet. */
  wasDeleted(tenant: string, sessionId: string): boolean {
    return this.deleted.has(keyOf(tenant, sessionId));
  }

  private markDeleted(key: string): void {
    this.deleted.add(key);
    while (this.deleted.size > this.limits.maxEntries) this.deleted.delete(this.deleted.values().next().value as string);
  }

  private remainingMs(record: SessionRecord): number {
    return record.firstTurnAtMs + this.limits.ttlMs - this.now();
  }

  private touch(key: string, record: SessionRecord): void {
    this.sessions.delete(key);
    this.sessions.set(key, record);
    while (this.sessions.size > this.limits.maxEntries) this.sessions.delete(this.sessions.keys().next().value as string);
  }
}

function keyOf(tenant: string, sessionId: string): string {
  return `${tenant}\u0000${sessionId}`;
}
