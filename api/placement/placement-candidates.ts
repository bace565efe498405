import type { ReplicaStatus } from '../../core/replica-status';
import { toU32, type Replica } from '../../policy/sdk';

export interface PlacementCandidates {
  readonly replicaSetKey: string;
  /** Ready replicas of that one set, in replica-id order. */
  readonly candidates: readonly Replica[];
}

/**
 * The replicas a placement may choose from (ORCH-3007/3008): Ready replicas (not standbys) of one replica set — the
 * affinity replica's set while that replica is Ready (its KV is there), else the set with the most
 * Ready replicas (ties: the smaller key, so every gateway picks the same set). A replica that is not
 * Ready is never a candidate: its lane is not polled.
 */
export function placementCandidates(statuses: readonly ReplicaStatus[], affinityReplicaId?: string): PlacementCandidates | undefined {
  const bySet = new Map<string, ReplicaStatus[]>();
  for (const status of statuses) {
    // A standby's set does not serve the pool queue (ORCH-3046): a task placed there would leave the pool's set.
    if (status.state !== 'ready' || status.replica_set_key === null || status.pool_queue_standby === true) continue;
    const members = bySet.get(status.replica_set_key) ?? [];
    members.push(status);
    bySet.set(status.replica_set_key, members);
  }
  const affinity = statuses.find((status) => status.replica_id === affinityReplicaId && status.state === 'ready' && status.pool_queue_standby !== true);
  let chosen = affinity?.replica_set_key ?? undefined;
  if (chosen === undefined) {
    for (const [key, members] of bySet) {
      const best = chosen === undefined ? undefined : bySet.get(chosen);
      if (best === undefined || members.length > best.length || (members.length === best.length && key < (chosen ?? ''))) chosen = key;
    }
  }
  const setKey = chosen;
  const members = setKey === undefined ? undefined : bySet.get(setKey);
  if (setKey === undefined || members === undefined) return undefined;
  const candidates = [...members]
    .sort((left, right) => (left.replica_id < right.replica_id ? -1 : left.replica_id > right.replica_id ? 1 : 0))
    .map((status) => ({
      replicaId: status.replica_id,
      replicaSetKey: setKey,
      state: 'ready' as const,
      slotsTotal: status.slots_total,
      slotsBusy: Math.min(status.slots_busy, status.slots_total),
      ...engineLoadOf(status),
    }));
  return { replicaSetKey: setKey, candidates };
}

/**
 * A replica's KV use and in-flight tokens as it last published them (its engine's slots, read every
 * second). The policy ABI's fields are plain u32s, so a figure the engine does not report (or an older
 * record without it) is 0 — documented in .specs/policy-abi.md §1 "Load figures".
 */
export function engineLoadOf(status: Pick<ReplicaStatus, 'kv_used_permille' | 'inflight_tokens'>): Pick<Replica, 'kvUsedPermille' | 'inflightTokens'> {
  return {
    kvUsedPermille: Math.min(1000, Math.max(0, Math.round(status.kv_used_permille ?? 0))),
    inflightTokens: toU32(status.inflight_tokens ?? 0),
  };
}
