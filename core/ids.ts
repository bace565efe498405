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
  /**
   * A digest of the replica's set key (ORCH-3007/3046): a replica of another set sees it on the pool queue's
   * pollers and keeps off that queue. Absent in identities of older releases.
   */
  readonly replicaSet?: string | undefined;
}

const IDENTITY_PREFIX = 'llama-orch';
const MOCK_MARK = 'MOCK-ENGINE';
const SET_MARK = 'set-';

export function formatReplicaIdentity(identity: ReplicaIdentity): string {
  const parts = [IDENTITY_PREFIX, identity.poolId, identity.replicaId, identity.engineVersion];
  if (identity.mockEngine) parts.push(MOCK_MARK);
  // After the mock mark, which older parsers read at a fixed place.
  if (identity.replicaSet !== undefined) parts.push(`${SET_MARK}${identity.replicaSet}`);
  return parts.join('/');
}

export function parseReplicaIdentity(text: string): ReplicaIdentity | undefined {
  const parts = text.split('/');
  const [prefix, poolId, replicaId, engineVersion] = parts;
  if (prefix !== IDENTITY_PREFIX || !poolId || !replicaId || engineVersion === undefined) return undefined;
  const marks = parts.slice(4);
  const replicaSet = marks.find((mark) => mark.startsWith(SET_MARK))?.slice(SET_MARK.length);
  return { poolId, replicaId, engineVersion, mockEngine: marks.includes(MOCK_MARK), ...(replicaSet ? { replicaSet } : {}) };
}
