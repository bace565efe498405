import { groupReplicaSets } from '../../api/replica-sets';
import { replicaStatusFixture } from '../support/replica-status-fixture';
import type { ReplicaStatus } from '../../core/replica-status';

function replica(id: string, overrides: Partial<ReplicaStatus> = {}): ReplicaStatus {
  return replicaStatusFixture(id, { slots_total: 4, slots_busy: 1, ...overrides });
}

const noSlo = (): [] => [];

test('ORCH-3007 OC-CTRL-2004: replicas with the same key form one set with summed slots and load', () => {
  const sets = groupReplicaSets([replica('p-r0'), replica('p-r1', { slots_busy: 3 })], noSlo);
  expect(sets).toHaveLength(1);
  expect(sets[0]).toEqual(expect.objectContaining({ id: `p/${String(replica('x').replica_set_key)}`, engine: 'llamacpp', slots_total: 8, slots_free: 4, load: 0.5, pool_id: 'p', model_ref: 'm', ctx: 2048, engine_version: 'b1' }));
  expect(sets[0]?.replicas.map((member) => member.replica_id)).toEqual(['p-r0', 'p-r1']);
});

test('ORCH-3007: another engine build or ctx is another set; replicas that are not up belong to none', () => {
  const sets = groupReplicaSets(
    [replica('p-r0'), replica('p-r1', { engine_version: 'b2' }), replica('p-r2', { ctx: 1024 }), replica('p-r3', { state: 'unready', live: false, ready: false }), replica('p-r4', { engine_version: null, replica_set_key: null })],
    noSlo,
  );
  expect(sets.map((set) => set.replicas.map((member) => member.replica_id))).toEqual(expect.arrayContaining([['p-r0'], ['p-r1'], ['p-r2']]));
  expect(sets).toHaveLength(3);
});

test('OC-CTRL-2004: a drained replica stays in its set but offers no free slot; the pool SLO snapshot is attached', () => {
  const sets = groupReplicaSets([replica('p-r0', { state: 'drained', slots_busy: 0 })], () => [{ priority: 'interactive', objective: 'ttft', attainment: 0.9, target: 0.95, samples: 20, breached: true }]);
  expect(sets[0]).toEqual(expect.objectContaining({ slots_total: 4, slots_free: 0, load: 0 }));
  expect(sets[0]?.slo).toEqual({ 'interactive.ttft': { attainment: 0.9, target: 0.95, samples: 20, breached: true } });
});
