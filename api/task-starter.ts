import { createHash } from 'node:crypto';
import type { Client } from '@temporalio/client';
import { PRIORITY_KEY } from '../core/engines';
import { taskWorkflowId } from '../core/ids';
import { SearchAttr } from '../core/search-attributes';
import { WORKFLOW_TASK_QUEUE } from '../core/task-queues';
import { TASK_WORKFLOW_TYPE, type TaskWorkflowInput } from '../core/task-workflow-contract';

export interface AdmissionMemo {
  readonly requestDigest: string;
  readonly queuePosition: number;
  readonly predictedStartMs: number;
  /** The internal URL of the gateway holding the live stream: other gateways relay from it (api/stream-relay.ts). */
  readonly streamSinkUrl?: string | undefined;
}

export type StartOutcome = { readonly kind: 'started' } | { readonly kind: 'duplicate'; readonly memo: AdmissionMemo | undefined };

/** Digest of the validated request, so a resubmitted task_id is recognized as the same task or not. */
export function requestDigest(request: object): string {
  return createHash('sha256').update(JSON.stringify(request)).digest('hex');
}

/**
 * Starts the task workflow. The id derives from task_id and a closed or running workflow with that id
 * is never replaced, so a resubmit is idempotent (ORCH-3024).
 */
export async function startTaskWorkflow(client: Client, input: TaskWorkflowInput, memo: AdmissionMemo, eagerStart: boolean): Promise<StartOutcome> {
  const { request } = input;
  try {
    await client.workflow.start(TASK_WORKFLOW_TYPE, {
      workflowId: taskWorkflowId(request.task_id),
      taskQueue: WORKFLOW_TASK_QUEUE,
      args: [input],
      workflowIdConflictPolicy: 'FAIL',
      workflowIdReusePolicy: 'REJECT_DUPLICATE',
      requestEagerStart: eagerStart,
      memo: { admission: memo },
      // The workflow's own tasks queue by priority too (activities inherit it): without it an interactive
      // task's first workflow task waits behind a batch flood's in the workflow task queue (bench:load).
      priority: { priorityKey: PRIORITY_KEY[request.priority], fairnessKey: input.clientId },
      typedSearchAttributes: [
        { key: SearchAttr.taskId, value: request.task_id },
        { key: SearchAttr.pool, value: input.poolId },
        { key: SearchAttr.priority, value: request.priority },
        { key: SearchAttr.clientId, value: input.clientId },
        { key: SearchAttr.taskState, value: 'admitted' },
        { key: SearchAttr.engine, value: request.engine },
        { key: SearchAttr.model, value: request.model_ref },
        { key: SearchAttr.sessionId, value: request.session_id },
      ],
    });
    return { kind: 'started' };
  } catch (error) {
    if ((error as { name?: unknown }).name !== 'WorkflowExecutionAlreadyStartedError') throw error;
    const description = await client.workflow.getHandle(taskWorkflowId(request.task_id)).describe();
    const stored = (description.memo as { admission?: AdmissionMemo } | undefined)?.admission;
    return { kind: 'duplicate', memo: stored };
  }
}
