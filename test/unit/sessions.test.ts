import { SessionRegistry } from '../../api/sessions/session-registry';
import { KvResidency, kvSessionKey } from '../../gpu-workers/kv-residency';
import { kvBytesPerToken } from '../../gpu-workers/models/kv-bytes-per-token';
import { SlotAllocator } from '../../gpu-workers/slot-allocator';

describe('ORCH-3021: the gateway\'s session registry', () => {
  let now = 0;
  const registry = (limits: Partial<{ ttlMs: number; maxTurns: number; maxEntries: number }> = {}) =>
    new SessionRegistry({ ttlMs: 1_000, maxTurns: 3, maxEntries: 100, ...limits }, () => now);
  beforeEach(() => {
    now = 10_000;
  });

  it('ORCH-3021: counts turns and refuses the turn past max_turns', () => {
    const sessions = registry();
    for (let turn = 1; turn <= 3; turn += 1) {
      expect(sessions.refusal('a', 's')).toBeUndefined();
      sessions.recordTurn('a', 's', `t${turn}`);
    }
    expect(sessions.info('a', 's')?.turns).toBe(3);
    expect(sessions.refusal('a', 's')).toEqual({ kind: 'turns', maxTurns: 3 });
  });

  it('ORCH-3021: the TTL runs from the first turn; an expired session is refused and shows 0 remaining', () => {
    const sessions = registry();
    sessions.recordTurn('a', 's', 't1');
    now += 400;
    sessions.recordTurn('a', 's', 't2');
    expect(sessions.info('a', 's')?.ttl_ms_remaining).toBe(600);
    now += 600;
    expect(sessions.refusal('a', 's')).toEqual({ kind: 'expired', ttlMs: 1_000 });
    expect(sessions.info('a', 's')?.ttl_ms_remaining).toBe(0);
  });

  it('ORCH-3035: sessions are keyed by tenant — the same id under another tenant is another (unknown) session', () => {
    const sessions = registry({ maxTurns: 1 });
    sessions.recordTurn('a', 's', 't1');
    expect(sessions.refusal('a', 's')?.kind).toBe('turns');
    expect(sessions.refusal('b', 's')).toBeUndefined();
    expect(sessions.info('b', 's')).toBeUndefined();
    expect(sessions.forget('b', 's')).toBeUndefined();
  });

  it('bounded: the least recently used session is forgotten past max_entries', () => {
    const sessions = registry({ maxEntries: 2 });
    sessions.recordTurn('a', 's1', 't1');
    sessions.recordTurn('a', 's2', 't2');
    sessions.recordTurn('a', 's1', 't3');
    sessions.recordTurn('a', 's3', 't4');
    expect(sessions.size).toBe(2);
    expect(sessions.info('a', 's2')).toBeUndefined();
    expect(sessions.info('a', 's1')?.turns).toBe(2);
  });

  it('ORCH-3009: a turn that ended well makes its replica the affinity; an error or cancel leaves it', () => {
    const sessions = registry();
    sessions.recordTurn('a', 's', 't1');
    sessions.dispatched('t1', 'r0');
    sessions.kvReported('t1', { replicaId: 'r0', kvWarmth: false, kvBytes: 4096 });
    sessions.taskEnded('t1', true);
    expect(sessions.affinity('a', 's')).toBe('r0');
    expect(sessions.info('a', 's')).toEqual({ ttl_ms_remaining: 1_000, turns: 1, kv_bytes: 4096, kv_warmth: false, kv_migrated: false, replica_id: 'r0' });
    sessions.recordTurn('a', 's', 't2');
    sessions.dispatched('t2', 'r1');
    sessions.taskEnded('t2', false);
    expect(sessions.affinity('a', 's')).toBe('r0');
    now += 1_000;
    expect(sessions.affinity('a', 's')).toBeUndefined();
  });

  it('ORCH-2005: forget returns the replica that holds the KV, then the session is unknown', () => {
    const sessions = registry();
    sessions.recordTurn('a', 's', 't1');
    sessions.dispatched('t1', 'r1');
    sessions.taskEnded('t1', true);
    expect(sessions.forget('a', 's')).toEqual({ replicaId: 'r1' });
    expect(sessions.info('a', 's')).toBeUndefined();
  });

  it('ORCH-2005: a delete is remembered (visibility lags it) until a new turn reuses the id; per tenant, bounded', () => {
    const sessions = registry({ maxEntries: 2 });
    sessions.recordTurn('a', 's', 't1');
    sessions.forget('a', 's');
    sessions.deletedElsewhere('a', 'other');
    expect([sessions.wasDeleted('a', 's'), sessions.wasDeleted('a', 'other'), sessions.wasDeleted('b', 's')]).toEqual([true, true, false]);
    sessions.recordTurn('a', 's', 't2');
    expect(sessions.wasDeleted('a', 's')).toBe(false);
    for (const id of ['x', 'y', 'z']) sessions.deletedElsewhere('a', id);
    expect(sessions.wasDeleted('a', 'other')).toBe(false);
    expect(sessions.wasDeleted('a', 'z')).toBe(true);
  });
});

describe('ORCH-3022: KV residency in a replica', () => {
  it('ORCH-3022: one session per slot; taking another session\'s slot evicts it (counted); residency ≤ slots', () => {
    const kv = new KvResidency(100);
    kv.record('s1', 0, 10);
    kv.record('s2', 1, 20);
    expect(kv.residentSessions).toBe(2);
    expect(kv.residentBytes).toBe(3_000);
    kv.claim('s3', 0);
    expect(kv.evictionsTotal).toBe(1);
    expect(kv.slotOf('s1')).toBeUndefined();
    kv.record('s3', 0, 5);
    expect(kv.residentSessions).toBe(2);
    expect(kv.slotOf('s3')).toBe(0);
  });

  it('ORCH-3022: an empty slot costs least, then the least recently used session\'s', () => {
    const kv = new KvResidency(1);
    kv.record('old', 0, 1);
    kv.record('new', 1, 1);
    expect(kv.reuseCost(2)).toBeLessThan(kv.reuseCost(0));
    expect(kv.reuseCost(0)).toBeLessThan(kv.reuseCost(1));
    kv.record('old', 0, 2);
    expect(kv.reuseCost(1)).toBeLessThan(kv.reuseCost(0));
  });

  it('forget releases the slot without counting an eviction', () => {
    const kv = new KvResidency(1);
    kv.record('s', 0, 1);
    expect(kv.forget('s')).toEqual({ slotId: 0, cachedTokens: 1, bytes: 1 });
    expect(kv.evictionsTotal).toBe(0);
    expect(kv.reuseCost(0)).toBe(-1);
  });

  it('keys sessions by tenant too', () => {
    expect(kvSessionKey('a', 's')).not.toBe(kvSessionKey('b', 's'));
  });
});

describe('ORCH-3022: SlotAllocator prefers the session\'s slot', () => {
  it('a free preferred slot wins; else the cheapest free slot; else none left', () => {
    const slots = new SlotAllocator(3);
    expect(slots.acquire(1)).toBe(1);
    const costs = new Map([[0, 5], [2, 1]]);
    expect(slots.acquire(1, (slot) => costs.get(slot) ?? 0)).toBe(2);
    expect(slots.acquire(2)).toBe(0);
    expect(slots.acquire()).toBeUndefined();
    slots.release(1);
    expect(slots.acquire(1)).toBe(1);
  });
});

describe('ORCH-3022: kv_bytes per token from GGUF metadata', () => {
  const header = (entries: Record<string, number | string>) => ({
    metadata: new Map(Object.entries(entries).map(([key, value]) => [key, typeof value === 'string' ? { type: 'string' as const, value } : { type: 'uint32' as const, value }])),
  });

  it('2 (K, V) × layers × KV heads × head dim × 2 bytes (f16)', () => {
    // Llama-3-8B: 32 layers, 8 KV heads of 128 → 128 KiB per token.
    const llama3 = header({ 'general.architecture': 'llama', 'llama.block_count': 32, 'llama.attention.head_count': 32, 'llama.attention.head_count_kv': 8, 'llama.embedding_length': 4096 });
    expect(kvBytesPerToken(llama3)).toBe(131_072);
    const explicitKeyLength = header({ 'general.architecture': 'qwen2', 'qwen2.block_count': 2, 'qwen2.attention.head_count': 4, 'qwen2.attention.head_count_kv': 2, 'qwen2.attention.key_length': 64 });
    expect(kvBytesPerToken(explicitKeyLength)).toBe(2 * 2 * 2 * 64 * 2);
  });

  it('without the architecture\'s counts: undefined, never a guess', () => {
    expect(kvBytesPerToken(header({ 'general.architecture': 'llama' }))).toBeUndefined();
    expect(kvBytesPerToken(header({}))).toBeUndefined();
  });
});
