import type { Logger } from 'pino';
import type { PoolConfig } from '../../core/config';
import type { TaskRequest } from '../../core/task-request';
import type { TaskPlacement } from '../../core/task-workflow-contract';
import type { PolicyHost } from '../../policy';
import { policyRequestFromTask } from '../../policy/sdk';
import type { ReplicaDirectory } from '../replica-directory';
import { placementCandidates } from './placement-candidates';

export interface PlacementPlannerOptions {
  readonly policies: ReadonlyMap<string, PolicyHost>;
  readonly replicas: Pick<ReplicaDirectory, 'replicas'>;
  /** config.placement.affinity_wait_ms; 0 turns placement off. */
  readonly waitMs: number;
  readonly logger: Logger;
}

/**
 * Asks the pool's policy where a task should run (ORCH-3008/3019) and turns the ranking into a lane
 * placement only when it carries information pull-based dispatch lacks: the top replica is the
 * session's affinity replica (its KV is warm, ORCH-3009), or the policy left a Ready candidate out (a
 * pin). Otherwise the task goes to the pool queue, where the first replica with a free slot takes it —
 * least loaded by real slot state, not by a snapshot up to a second old. Reads memory only: no
 * Temporal call on the request path.
 */
export class PlacementPlanner {
  constructor(private readonly options: PlacementPlannerOptions) {}

  async plan(pool: PoolConfig, request: TaskRequest, clientId: string, affinityReplicaId?: string): Promise<TaskPlacement | undefined> {
    if (this.options.waitMs <= 0) return undefined;
    const policy = this.options.policies.get(pool.id);
    // The built-in ranks every Ready replica, so without an affinity its ranking can neither pin nor
    // place: skip the call (and its per-decision log line) on the common path.
    if (affinityReplicaId === undefined && policy?.active.kind === 'builtin') return undefined;
    const set = placementCandidates(this.options.replicas.replicas(pool.id), affinityReplicaId);
    // One Ready replica: the pool queue reaches only it anyway, and a lane would add nothing.
    if (!policy || !set || set.candidates.length < 2) return undefined;
    const affinity = set.candidates.some((candidate) => candidate.replicaId === affinityReplicaId) ? affinityReplicaId : undefined;
    let ranked: readonly string[];
    try {
      const outcome = await policy.place({
        candidates: [...set.candidates],
        request: policyRequestFromTask(request, clientId),
        replicaSetKey: set.replicaSetKey,
        ...(affinity !== undefined ? { affinityReplicaId: affinity } : {}),
        poolId: pool.id,
      });
      ranked = outcome.decision.replicaIds;
    } catch (error) {
      // Placement is an optimisation: a task the policy cannot place still runs from the pool queue.
      this.options.logger.warn({ err: error, pool_id: pool.id, job_id: request.task_id }, 'placement failed; pool queue only');
      return undefined;
    }
    const top = ranked[0];
    if (top === undefined || !set.candidates.some((candidate) => candidate.replicaId === top)) return undefined;
    if (top === affinity) return { replicaId: top, waitMs: this.options.waitMs, reason: 'session-affinity' };
    const pinned = set.candidates.some((candidate) => !ranked.includes(candidate.replicaId));
    return pinned ? { replicaId: top, waitMs: this.options.waitMs, reason: 'policy-pin' } : undefined;
  }
}
