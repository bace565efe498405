import { ReplicaStateMachine } from '../../gpu-workers/pool-manager/replica-state';
import type { ReplicaStatus } from '../../core/replica-status';

const identity = { poolId: 'p', replicaId: 'p-r0', host: 'h', mockEngine: false, engine: 'llamacpp', modelRef: 'm', quant: 'q4_1', ctx: 2048, samplerProfileVersion: 'v1' };
const error = { code: 'WORKER_RESET' as const, kind: 'engine_exit' as const, message: 'boom', at: '2026-01-01T00:00:00.000Z' };

test('OC-POOL-3001: the start path reaches Ready through verification, loading and the self-test; live and ready follow the state', () => {
  const machine = new ReplicaStateMachine(identity, () => 0);
  const seen: ReplicaStatus[] = [];
  machine.onChange((status) => seen.push(status));
  machine.transition('verifying');
  machine.transition('loading');
  machine.transition('self_test');
  machine.transition('ready', { engineVersion: 'b1-abc', modelDigest: 'sha256:00' });
  expect(seen.map((status) => [status.state, status.live, status.ready])).toEqual([
    ['verifying', false, false],
    ['loading', true, false],
    ['self_test', true, false],
    ['ready', true, true],
  ]);
  expect(machine.status).toEqual(expect.objectContaining({ engine_version: 'b1-abc', model_digest: 'sha256:00', last_error: null }));
});

test('ORCH-3038: a crash goes Ready → Draining → Unready → Restarting; the last error and restart count survive recovery', () => {
  const machine = new ReplicaStateMachine(identity, () => 0);
  for (const state of ['loading', 'ready'] as const) machine.transition(state);
  machine.transition('draining', { error });
  expect(machine.status).toEqual(expect.objectContaining({ draining: true, ready: false, last_error: error }));
  machine.transition('unready');
  machine.transition('restarting', { restart: true, nextAttemptAtMs: 1_000 });
  expect(machine.status.next_attempt_at).toBe('1970-01-01T00:00:01.000Z');
  machine.transition('loading');
  machine.transition('ready');
  expect(machine.status).toEqual(expect.objectContaining({ state: 'ready', restarts: 1, last_error: error, next_attempt_at: null }));
});

test('illegal transitions throw instead of reporting a state the replica is not in', () => {
  const machine = new ReplicaStateMachine(identity);
  expect(() => machine.transition('ready')).toThrow('illegal transition starting → ready');
  machine.transition('stopped');
  expect(() => machine.transition('restarting')).toThrow('illegal transition stopped → restarting');
});

test('OC-POOL-3011: the breaker state is reported as breaker_open', () => {
  const machine = new ReplicaStateMachine(identity);
  machine.transition('unready', { error });
  machine.transition('breaker_open', { nextAttemptAtMs: 0 });
  expect(machine.status.breaker_open).toBe(true);
  machine.transition('restarting', { restart: true });
  expect(machine.status).toEqual(expect.objectContaining({ breaker_open: false, restarts: 1 }));
});

test('OC-POOL-3030: launches are counted by outcome — ready (or drained), or the failure kind — and other transitions count nothing', () => {
  const machine = new ReplicaStateMachine(identity, () => 0);
  machine.transition('verifying');
  machine.transition('unready', { error: { ...error, code: 'UNTRUSTED_ARTIFACT', kind: 'untrusted_artifact' } });
  machine.transition('restarting', { restart: true });
  machine.transition('loading');
  machine.transition('ready', { engineVersion: 'b1' });
  machine.transition('draining');
  machine.transition('drained');
  machine.transition('loading');
  machine.transition('drained');
  machine.transition('ready');
  machine.transition('draining', { error });
  machine.transition('unready');
  expect(machine.status.launch_outcomes).toEqual({ untrusted_artifact: 1, ready: 2 });
});

test('ORCH-3007: the replica-set key appears with the engine version and follows the model and quant a reload brings', () => {
  const machine = new ReplicaStateMachine({ ...identity, quant: null }, () => 0);
  expect(machine.status.replica_set_key).toBeNull();
  machine.transition('loading');
  machine.transition('ready', { engineVersion: 'b1', quant: 'Q4_1', slotsTotal: 2 });
  expect(machine.status).toEqual(expect.objectContaining({ replica_set_key: 'llamacpp|m|Q4_1|ctx2048|b1|sampler-v1', quant: 'Q4_1', slots_total: 2 }));
  machine.setSlotsBusy(1);
  expect(machine.status.slots_busy).toBe(1);
  machine.transition('draining');
  machine.transition('unready');
  expect(machine.status.slots_busy).toBe(0);
  machine.transition('restarting');
  machine.transition('loading');
  machine.transition('ready', { engineVersion: 'b1', modelRef: 'm2', quant: 'Q8_0' });
  expect(machine.status.replica_set_key).toBe('llamacpp|m2|Q8_0|ctx2048|b1|sampler-v1');
});
