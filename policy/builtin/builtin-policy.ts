import { ErrorCode } from '../../core/errors';
import type { AdmitDecision, NativePolicy, PlaceDecision } from '../sdk/decision';
import type { AdmitSnapshot, PlaceSnapshot, Replica } from '../sdk/snapshot';

/** Retry hint on a full queue: the contract's `Retry-After: 2` for ADMISSION_REJECT (spec §2.5). */
const FULL_QUEUE_RETRY_AFTER_MS = 2000;

/**
 * Default admission (spec §2.6): accept while the queue has room; when full, apply the pool's
 * full-queue policy. `drop-lru` sheds the oldest queued task; `shed-low-priority` lets an
 * interactive request shed the newest queued batch task (it has waited least); otherwise reject.
 */
function admit(snapshot: AdmitSnapshot): AdmitDecision {
  const { queue, request } = snapshot;
  if (queue.depthInteractive + queue.depthBatch < queue.capacity) return { kind: 'accept' };
  switch (queue.fullPolicy) {
    case 'reject':
      return { kind: 'reject', code: ErrorCode.ADMISSION_REJECT, retryAfterMs: FULL_QUEUE_RETRY_AFTER_MS, policyLabel: 'reject' };
    case 'drop-lru': {
      const oldest = queue.tasks[0];
      if (oldest !== undefined) return { kind: 'shed', victimTaskId: oldest.taskId };
      return { kind: 'reject', code: ErrorCode.QUEUE_FULL_DROP_LRU, retryAfterMs: 1000, policyLabel: 'drop-lru' };
    }
    case 'shed-low-priority': {
      if (request.priority === 'interactive') {
        const victim = queue.tasks.findLast((task) => task.priority === 'batch');
        if (victim !== undefined) return { kind: 'shed', victimTaskId: victim.taskId };
      }
      return {
        kind: 'reject',
        code: ErrorCode.ADMISSION_REJECT,
        retryAfterMs: FULL_QUEUE_RETRY_AFTER_MS,
        policyLabel: 'shed-low-priority',
      };
    }
  }
}

function freeSlots(replica: Replica): number {
  return Math.max(0, replica.slotsTotal - replica.slotsBusy);
}

/** Load as busy slots per slot, compared exactly (cross-multiplied) so no float rounding decides. */
function compareLoad(a: Replica, b: Replica): number {
  const left = a.slotsBusy * Math.max(1, b.slotsTotal);
  const right = b.slotsBusy * Math.max(1, a.slotsTotal);
  return left - right;
}

/**
 * Default placement: ready replicas only; the session's affinity replica first while it has a free
 * slot (its KV cache is warm); then replicas with a free slot before full ones, least loaded first,
 * then least KV used, fewest in-flight tokens, and replica id, so that ties break the same way
 * every time (determinism).
 */
function place(snapshot: PlaceSnapshot): PlaceDecision {
  const ready = snapshot.candidates.filter((replica) => replica.state === 'ready');
  const affinity = ready.find((replica) => replica.replicaId === snapshot.affinityReplicaId && freeSlots(replica) > 0);
  const ranked = ready
    .filter((replica) => replica !== affinity)
    .sort(
      (a, b) =>
        Number(freeSlots(b) > 0) - Number(freeSlots(a) > 0) ||
        compareLoad(a, b) ||
        a.kvUsedPermille - b.kvUsedPermille ||
        a.inflightTokens - b.inflightTokens ||
        (a.replicaId < b.replicaId ? -1 : a.replicaId > b.replicaId ? 1 : 0),
    );
  return { replicaIds: [...(affinity === undefined ? [] : [affinity]), ...ranked].map((replica) => replica.replicaId) };
}

/** The built-in policy, a native in-process implementation of the ABI (ORCH-3048). */
export const builtinPolicy: NativePolicy = {
  id: 'builtin',
  version: '1.0.0',
  admit,
  place,
};
