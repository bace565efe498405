/** Task-queue names, versioned so an incompatible change can run beside the old one. */
export const WORKFLOW_TASK_QUEUE = 'orch-workflows-v1';

export function poolTaskQueue(poolId: string): string {
  return `orch-pool-${poolId}-v1`;
}

/**
 * One replica's own lane: engine activities placed on this replica (session affinity, a policy pin)
 * wait here for a bounded time before falling back to the pool queue (.specs/decisions placement ADR).
 */
export function replicaLaneTaskQueue(replicaId: string): string {
  return `orch-replica-${replicaId}-v1`;
}

/** One replica's control queue: drain, resume, reload and KV eviction activities from operations workflows. */
export function replicaControlTaskQueue(replicaId: string): string {
  return `orch-replica-${replicaId}-control-v1`;
}
