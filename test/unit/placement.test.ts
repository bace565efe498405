import pino from 'pino';
import type { PoolConfig } from '../../core/config';
import { replicaStatusFixture } from '../support/replica-status-fixture';
import type { ReplicaStatus } from '../../core/replica-status';
import type { TaskRequest } from '../../core/task-request';
import { placementCandidates } from '../../api/placement/placement-candidates';
import { LaneSlotGate, PoolSlotGate } from '../../gpu-workers/pool-manager/engine-slot-gate';
import { SlotAllocator } from '../../gpu-workers/slot-allocator';
import { PlacementPlanner } from '../../api/placement/placement-planner';
import { createPolicyHost, type PolicyHost } from '../../policy';
import type { PlaceDecision, PlaceSnapshot } from '../../policy/sdk';

function status(replicaId: string, overrides: Partial<ReplicaStatus> = {}): ReplicaStatus {
  return replicaStatusFixture(replicaId, { replica_set_key: 'set-a', ...overrides });
}

describe('ORCH-3007/3008: the replica set a placement chooses from', () => {
  it('ORCH-3008: only Ready replicas are candidates, in replica-id order', () => {
    const set = placementCandidates([status('p-r2'), status('p-r0', { state: 'draining', ready: false }), status('p-r1')]);
    expect(set?.candidates.map((candidate) => candidate.replicaId)).toEqual(['p-r1', 'p-r2']);
  });

  it('ORCH-3007: the set with the most Ready replicas wins; ties go to the smaller key', () => {
    const statuses = [status('p-r0', { replica_set_key: 'set-b' }), status('p-r1', { replica_set_key: 'set-a' }), status('p-r2', { replica_set_key: 'set-b' })];
    expect(placementCandidates(statuses)?.replicaSetKey).toBe('set-b');
    expect(placementCandidates(statuses.slice(0, 2))?.replicaSetKey).toBe('set-a');
  });

  it('ORCH-3009: the affinity replica\'s set is chosen while that replica is Ready, even when smaller', () => {
    const statuses = [status('p-r0', { replica_set_key: 'set-b' }), status('p-r1', { replica_set_key: 'set-a' }), status('p-r2', { replica_set_key: 'set-b' })];
    expect(placementCandidates(statuses, 'p-r1')?.replicaSetKey).toBe('set-a');
    const unready = statuses.map((entry) => (entry.replica_id === 'p-r1' ? { ...entry, state: 'unready' as const } : entry));
    expect(placementCandidates(unready, 'p-r1')?.replicaSetKey).toBe('set-b');
  });

  it('replicas without a set key yet (engine version unknown) or none Ready: no candidates', () => {
    expect(placementCandidates([status('p-r0', { replica_set_key: null })])).toBeUndefined();
    expect(placementCandidates([])).toBeUndefined();
  });
});

describe('ORCH-3008/3019: when the gateway places a task on a lane', () => {
  const pool = { id: 'p' } as PoolConfig;
  const request = {
    task_id: '00000000-0000-4000-8000-000000000001',
    session_id: '00000000-0000-4000-8000-000000000002',
    workload: 'completion',
    model_ref: 'm',
    engine: 'llamacpp',
    ctx: 512,
    priority: 'interactive',
    max_tokens: 8,
    deadline_ms: 30_000,
    prompt: 'hi',
  } as TaskRequest;
  const logger = pino({ level: 'silent' });
  let builtin: PolicyHost;
  beforeAll(async () => {
    builtin = await createPolicyHost(undefined, logger);
  });
  afterAll(() => builtin.close());

  function planner(policy: PolicyHost, statuses: ReplicaStatus[], waitMs = 250): PlacementPlanner {
    return new PlacementPlanner({ policies: new Map([['p', policy]]), replicas: { replicas: () => statuses }, waitMs, logger });
  }
  function fixedPolicy(decide: (snapshot: PlaceSnapshot) => PlaceDecision): PolicyHost {
    return {
      admit: () => Promise.reject(new Error('unused')),
      place: (snapshot: PlaceSnapshot) => Promise.resolve({ decision: decide(snapshot), decidedBy: { kind: 'builtin', policyId: 'test', policyVersion: '0' }, latencyMs: 0 }),
      close: () => Promise.resolve(),
      // Stands for a plugin: the planner asks it even without an affinity.
      active: { kind: 'plugin', pluginId: 'test', pluginVersion: '0', abiVersion: '1.0.0', sha256: '' },
    } as unknown as PolicyHost;
  }

  it('OC-CORE-1012: without affinity or a pin the built-in ranking places nothing (pull-based least-loaded dispatch)', async () => {
    expect(await planner(builtin, [status('p-r0'), status('p-r1')]).plan(pool, request, 'tenant')).toBeUndefined();
  });

  it('ORCH-3009 OC-CORE-1013: the affinity replica ranked first → session-affinity lane; a busy one → no placement', async () => {
    const statuses = [status('p-r0'), status('p-r1')];
    expect(await planner(builtin, statuses, 300).plan(pool, request, 'tenant', 'p-r1')).toEqual({ replicaId: 'p-r1', waitMs: 300, reason: 'session-affinity' });
    const busy = [status('p-r0'), status('p-r1', { slots_busy: 2 })];
    expect(await planner(builtin, busy).plan(pool, request, 'tenant', 'p-r1')).toBeUndefined();
  });

  it('ORCH-3008: a ranking that leaves a Ready candidate out pins the task to its top replica', async () => {
    const pin = fixedPolicy((snapshot) => ({ replicaIds: [snapshot.candidates[0]?.replicaId ?? ''] }));
    expect(await planner(pin, [status('p-r0'), status('p-r1')]).plan(pool, request, 'tenant')).toEqual({ replicaId: 'p-r0', waitMs: 250, reason: 'policy-pin' });
  });

  it('never places on a replica that is not a Ready candidate, on one replica, or with the wait set to 0', async () => {
    const stale = fixedPolicy(() => ({ replicaIds: ['p-r9'] }));
    expect(await planner(stale, [status('p-r0'), status('p-r1')]).plan(pool, request, 'tenant')).toBeUndefined();
    const pin = fixedPolicy((snapshot) => ({ replicaIds: [snapshot.candidates[0]?.replicaId ?? ''] }));
    expect(await planner(pin, [status('p-r0')]).plan(pool, request, 'tenant')).toBeUndefined();
    expect(await planner(pin, [status('p-r0'), status('p-r1')], 0).plan(pool, request, 'tenant')).toBeUndefined();
    const unready = [status('p-r0'), status('p-r1', { state: 'unready', ready: false }), status('p-r2')];
    expect(await planner(builtin, unready).plan(pool, request, 'tenant', 'p-r1')).toBeUndefined();
  });
});

describe('ORCH-3019: the lane polls only while the engine has a free slot', () => {
  it('ORCH-3019: a reservation waits for a free engine slot and for the lane\'s own slot; an abort rejects it', async () => {
    const slots = new SlotAllocator(1);
    const gate = new LaneSlotGate(slots);
    const taken = slots.acquire();
    let granted = false;
    const reservation = gate.reserveSlot(undefined, new AbortController().signal).then(() => {
      granted = true;
    });
    await Promise.resolve();
    expect(granted).toBe(false);
    slots.release(taken);
    await reservation;
    expect(granted).toBe(true);
    // The lane's one slot is held: the next reservation waits until it is released.
    const abort = new AbortController();
    const second = gate.reserveSlot(undefined, abort.signal);
    abort.abort();
    await expect(second).rejects.toMatchObject({ name: 'AbortError' });
    const third = gate.reserveSlot(undefined, new AbortController().signal);
    gate.releaseSlot();
    await expect(third).resolves.toEqual({});
    expect(gate.tryReserveSlot()).toBeNull();
  });
});

async function granted(reservation: Promise<unknown>): Promise<boolean> {
  let done = false;
  void reservation.then(
    () => {
      done = true;
    },
    () => undefined,
  );
  for (let tick = 0; tick < 5; tick += 1) await Promise.resolve();
  return done;
}

describe('fast start (ADR 2026-12-06): the pool queue\'s poll permits follow the engine slots that fast starts take', () => {
  it('the pool queue polls only for engine slots nobody else took: a fast start takes one, its poll waits', async () => {
    const slots = new SlotAllocator(2);
    const gate = new PoolSlotGate(slots);
    await gate.reserveSlot(undefined, new AbortController().signal);
    // A fast start takes the other slot: no permit for a second poll.
    const fastStarted = slots.acquire();
    const second = gate.reserveSlot(undefined, new AbortController().signal);
    expect(await granted(second)).toBe(false);
    slots.release(fastStarted);
    expect(await granted(second)).toBe(true);
  });

  it('the pool queue counts its own running tasks once: a task it took does not shrink its permits twice', async () => {
    const slots = new SlotAllocator(2);
    const gate = new PoolSlotGate(slots);
    await gate.reserveSlot(undefined, new AbortController().signal);
    gate.markSlotUsed({ slotInfo: { type: 'activity', activityType: 'runEngineTask' }, permit: {} });
    slots.acquire();
    expect(await granted(gate.reserveSlot(undefined, new AbortController().signal))).toBe(true);
  });
});
