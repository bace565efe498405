import type { ReplicaStatus } from '../core/replica-status';
import type { ObjectiveResult } from './observability/slo-tracker';

/** Replicas that belong to a set: their engine is up with the set's model (drained ones serve again on resume). */
const MEMBER_STATES: ReadonlySet<string> = new Set(['ready', 'draining', 'drained']);

export interface ReplicaSetMember {
  readonly replica_id: string;
  readonly state: string;
  readonly slots_busy: number;
  readonly slots_total: number;
}

/** Spec §2.9 `ReplicaSet` plus llama-orch's additive fields (ORCH-3007's key fields, the pool, the members). */
export interface ReplicaSetView {
  readonly id: string;
  readonly engine: string;
  /** Busy slots over all slots of the set, 0..1. */
  readonly load: number;
  readonly slots_total: number;
  /** Free slots on members that take work now (ready). */
  readonly slots_free: number;
  readonly slo: Record<string, unknown>;
  readonly pool_id: string;
  readonly replica_set_key: string;
  readonly model_ref: string;
  readonly quant: string | null;
  readonly ctx: number;
  readonly engine_version: string;
  readonly sampler_profile_version: string;
  readonly replicas: readonly ReplicaSetMember[];
}

/**
 * OC-CTRL-2004 / ORCH-3007: groups live replicas by pool and replica-set key (core/replica-set.ts) — same
 * engine, model, quant, ctx, engine build and sampler profile — with their load and the pool's SLO snapshot.
 * The id is `<pool>/<key>`, unique across pools (a key alone does not name the pool).
 */
export function groupReplicaSets(statuses: readonly ReplicaStatus[], sloOf: (poolId: string) => readonly ObjectiveResult[]): ReplicaSetView[] {
  const groups = new Map<string, ReplicaStatus[]>();
  for (const status of statuses) {
    if (status.replica_set_key === null || !MEMBER_STATES.has(status.state)) continue;
    const id = `${status.pool_id}/${status.replica_set_key}`;
    groups.set(id, [...(groups.get(id) ?? []), status]);
  }
  return [...groups.entries()]
    .sort(([left], [right]) => left.localeCompare(right))
    .map(([id, members]) => {
      const first = members[0] as ReplicaStatus;
      const slotsTotal = members.reduce((sum, member) => sum + member.slots_total, 0);
      const slotsBusy = members.reduce((sum, member) => sum + member.slots_busy, 0);
      const slotsFree = members.filter((member) => member.state === 'ready').reduce((sum, member) => sum + Math.max(0, member.slots_total - member.slots_busy), 0);
      return {
        id,
        engine: first.engine,
        load: slotsTotal === 0 ? 0 : slotsBusy / slotsTotal,
        slots_total: slotsTotal,
        slots_free: slotsFree,
        slo: sloSnapshot(sloOf(first.pool_id)),
        pool_id: first.pool_id,
        replica_set_key: first.replica_set_key ?? '',
        model_ref: first.model_ref,
        quant: first.quant,
        ctx: first.ctx,
        engine_version: first.engine_version ?? '',
        sampler_profile_version: first.sampler_profile_version,
        replicas: members.map((member) => ({ replica_id: member.replica_id, state: member.state, slots_busy: member.slots_busy, slots_total: member.slots_total })),
      };
    });
}

/** `{ "<priority>.<objective>": { attainment, target, samples, breached } }` over the pool's window. */
function sloSnapshot(results: readonly ObjectiveResult[]): Record<string, unknown> {
  return Object.fromEntries(
    results.map((result) => [`${result.priority}.${result.objective}`, { attainment: result.attainment, target: result.target, samples: result.samples, breached: result.breached }]),
  );
}
