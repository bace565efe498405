/** Workflow ids derive from task ids, so resubmitting a task_id finds the same workflow (ORCH-3024). */
const TASK_WORKFLOW_PREFIX = 'task-';

export function taskWorkflowId(taskId: string): string {
  return `${TASK_WORKFLOW_PREFIX}${taskId}`;
}

export function taskIdFromWorkflowId(workflowId: string): string | undefined {
  return workflowId.startsWith(TASK_WORKFLOW_PREFIX) ? workflowId.slice(TASK_WORKFLOW_PREFIX.length) : undefined;
}

/** Temporal matching identity of a pool replica; the gateway reads pool health from it (see .specs/pool-health.md). */
export interface ReplicaIdentity {
  readonly poolId: string;
  readonly replicaId: string;
  readonly engineVersion: string;
  readonly mockEngine: boolean;
}

const IDENTITY_PREFIX = 'llama-orch';
const MOCK_MARK = 'MOCK-ENGINE';

export function formatReplicaIdentity(identity: ReplicaIdentity): string {
  const parts = [IDENTITY_PREFIX, identity.poolId, identity.replicaId, identity.engineVersion];
  if (identity.mockEngine) parts.push(MOCK_MARK);
  return parts.join('/');
}

export function parseReplicaIdentity(text: string): ReplicaIdentity | undefined {
  const parts = text.split('/');
  const [prefix, poolId, replicaId, engineVersion, mark] = parts;
  if (prefix !== IDENTITY_PREFIX || !poolId || !replicaId || engineVersion === undefined) return undefined;
  return { poolId, replicaId, engineVersion, mockEngine: mark === MOCK_MARK };
}
