import { builtinPolicy } from '../../policy/builtin/builtin-policy';
import { admitSnapshot, placeSnapshot, replicas } from '../../policy/examples/sample-snapshots';

function fullQueue(fullPolicy: 'reject' | 'drop-lru' | 'shed-low-priority') {
  const snapshot = admitSnapshot();
  return { ...snapshot, queue: { ...snapshot.queue, capacity: 64, fullPolicy } };
}

describe('built-in admission', () => {
  it('accepts while the queue has room', () => {
    expect(builtinPolicy.admit(admitSnapshot())).toEqual({ kind: 'accept' });
  });

  it('full + reject: ADMISSION_REJECT with the contract retry hint', () => {
    expect(builtinPolicy.admit(fullQueue('reject'))).toEqual({
      kind: 'reject',
      code: 'ADMISSION_REJECT',
      retryAfterMs: 2000,
      policyLabel: 'reject',
    });
  });

  it('full + drop-lru: sheds the oldest queued task', () => {
    expect(builtinPolicy.admit(fullQueue('drop-lru'))).toEqual({ kind: 'shed', victimTaskId: 'queued-0000' });
  });

  it('full + shed-low-priority: an interactive request sheds the newest batch task; a batch one is rejected', () => {
    const snapshot = fullQueue('shed-low-priority');
    expect(builtinPolicy.admit(snapshot)).toEqual({ kind: 'shed', victimTaskId: 'queued-0062' });
    const batch = { ...snapshot, request: { ...snapshot.request, priority: 'batch' as const } };
    expect(builtinPolicy.admit(batch)).toMatchObject({ kind: 'reject', code: 'ADMISSION_REJECT', policyLabel: 'shed-low-priority' });
  });
});

describe('built-in placement', () => {
  it('puts the affinity replica first while it has a free slot, then the least loaded; skips non-ready', () => {
    const ranking = builtinPolicy.place(placeSnapshot()).replicaIds;
    expect(ranking).not.toContain('pool-a-r5'); // draining
    // r2 holds the session; r3 has no free slot and comes last; r1 and r6 tie on load, r1 has less KV used.
    expect(ranking).toEqual(['pool-a-r2', 'pool-a-r0', 'pool-a-r7', 'pool-a-r4', 'pool-a-r1', 'pool-a-r6', 'pool-a-r3']);
  });

  it('ignores affinity to a full replica and breaks ties by replica id', () => {
    const candidates = replicas(3).map((replica) => ({ ...replica, slotsBusy: 1, kvUsedPermille: 0, inflightTokens: 0 }));
    const full = { ...candidates[2]!, slotsBusy: 4 };
    const ranking = builtinPolicy.place(placeSnapshot({ candidates: [full, candidates[1]!, candidates[0]!], affinityReplicaId: full.replicaId }));
    expect(ranking.replicaIds).toEqual(['pool-a-r0', 'pool-a-r1', 'pool-a-r2']);
  });
});
