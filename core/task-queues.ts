/** Task-queue names, versioned so an incompatible change can run beside the old one. */
export const WORKFLOW_TASK_QUEUE = 'orch-workflows-v1';

export function poolTaskQueue(poolId: string): string {
  return `orch-pool-${poolId}-v1`;
}
