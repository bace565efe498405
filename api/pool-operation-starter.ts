import { randomUUID } from 'node:crypto';
import type { PoolConfig } from '../core/config';
import { ErrorCode, OrchError } from '../core/errors';
import {
  BEGIN_POOL_OPERATION_UPDATE,
  FINISH_POOL_OPERATION_SIGNAL,
  POOL_STATE_WORKFLOW_TYPE,
  poolOperationWorkflowId,
  poolStateWorkflowId,
} from '../core/pool-state';
import type { BeginPoolOperation, BeginPoolOperationResult, FinishPoolOperation, PoolMode, PoolOperationInput, PoolOperationKind, PoolState, ReloadProgress } from '../core/pool-state';
import { replicaId } from '../core/replica-status';
import { SearchAttr } from '../core/search-attributes';
import { WORKFLOW_TASK_QUEUE } from '../core/task-queues';
import type { GatewayContext } from './gateway-context';

/** A second operation on a pool waits for the first: clients retry after this. */
const BUSY_RETRY_AFTER_MS = 5_000;

export interface StartedOperation {
  readonly operation_id: string;
  readonly pool_id: string;
  readonly kind: PoolOperationKind;
  /** The pool's mode from now on. */
  readonly mode: PoolMode;
}

export interface OperationSpec<Input extends PoolOperationInput> {
  readonly kind: PoolOperationKind;
  readonly workflowType: string;
  /** The mode the pool enters when the operation is claimed. */
  readonly mode: PoolMode;
  readonly model: string;
  /** A reload's progress as it begins (strategy, first phase), shown in health from the claim on. */
  readonly reload?: ReloadProgress | undefined;
  /** The operation's input; `state` is the pool's record as the claim left it (the authoritative current model). */
  readonly input: (base: PoolOperationInput, state: PoolState) => Input;
}

/** Every replica an operation acts on: the configured ones and any others seen polling (extra hosts), in order. */
export function operationReplicaIds(context: Pick<GatewayContext, 'replicas'>, pool: PoolConfig): string[] {
  const known = context.replicas.replicas(pool.id).map((replica) => replica.replica_id);
  const configured = Array.from({ length: pool.replicas }, (_unused, index) => replicaId(pool.id, index));
  return [...new Set([...configured, ...known])];
}

/**
 * Claims the pool for one operation in its pool-state workflow (one at a time, enforced there), then starts
 * the operation's workflow (design §5). A claim that loses answers 503 POOL_UNAVAILABLE naming the running
 * operation; a workflow that cannot start releases the claim.
 */
export async function startPoolOperation<Input extends PoolOperationInput>(context: GatewayContext, pool: PoolConfig, spec: OperationSpec<Input>): Promise<StartedOperation> {
  const { client } = context;
  const operationId = poolOperationWorkflowId(pool.id, spec.kind, randomUUID());
  await client.workflow.start(POOL_STATE_WORKFLOW_TYPE, {
    workflowId: poolStateWorkflowId(pool.id),
    taskQueue: WORKFLOW_TASK_QUEUE,
    args: [{ poolId: pool.id, state: null }],
    workflowIdConflictPolicy: 'USE_EXISTING',
    typedSearchAttributes: [{ key: SearchAttr.pool, value: pool.id }],
  });
  // Not the handle start() returns: it names the run it found as the first of its chain, so once the pool-state
  // workflow has continued as new (every 200 changes) every update through it is WorkflowNotFound — a 500 on every
  // operation after about a hundred on the pool (found by the schemathesis run). This one follows the chain.
  const stateHandle = client.workflow.getHandle(poolStateWorkflowId(pool.id));
  const previousMode = context.poolStates.state(pool.id).mode;
  const claim: BeginPoolOperation = { operation: { id: operationId, kind: spec.kind, started_at: new Date().toISOString(), ...(spec.reload ? { reload: spec.reload } : {}) }, mode: spec.mode };
  const claimed = await stateHandle.executeUpdate<BeginPoolOperationResult, [BeginPoolOperation]>(BEGIN_POOL_OPERATION_UPDATE, { args: [claim] });
  if (!claimed.accepted) {
    throw new OrchError(ErrorCode.POOL_UNAVAILABLE, `pool ${pool.id} is busy with operation ${claimed.running.id} (${claimed.running.kind}, since ${claimed.running.started_at}); one operation per pool at a time`, {
      poolId: pool.id,
      retryAfterMs: BUSY_RETRY_AFTER_MS,
    });
  }
  context.poolStates.remember(claimed.state);
  const input = spec.input({ version: 1, poolId: pool.id, operationId, replicaIds: operationReplicaIds(context, pool) }, claimed.state);
  try {
    await client.workflow.start(spec.workflowType, {
      workflowId: operationId,
      taskQueue: WORKFLOW_TASK_QUEUE,
      args: [input],
      typedSearchAttributes: [
        { key: SearchAttr.pool, value: pool.id },
        { key: SearchAttr.engine, value: pool.engine },
        { key: SearchAttr.model, value: spec.model },
      ],
    });
  } catch (error) {
    const release: FinishPoolOperation = { id: operationId, outcome: 'failed', cause: 'the operation workflow did not start', mode: previousMode };
    await stateHandle.signal(FINISH_POOL_OPERATION_SIGNAL, release).catch(() => undefined);
    context.logger.error({ err: error, pool_id: pool.id, operation_id: operationId }, 'pool operation not started');
    throw new OrchError(ErrorCode.POOL_UNAVAILABLE, 'the orchestrator cannot reach Temporal; retry later', { poolId: pool.id, retryAfterMs: 1_000 });
  }
  context.logger.info({ pool_id: pool.id, operation_id: operationId, kind: spec.kind }, 'pool operation started');
  return { operation_id: operationId, pool_id: pool.id, kind: spec.kind, mode: spec.mode };
}
