import type { Client } from '@temporalio/client';
import { ErrorCode, isErrorCode } from '../core/errors';
import { taskWorkflowId } from '../core/ids';
import type { StreamPart } from '../core/stream-parts';
import type { TaskResult } from '../core/task-workflow-contract';
import type { AdmissionMemo } from './task-starter';

/**
 * Rebuilds a task's stream from its workflow when this gateway holds no live copy (it restarted, or
 * the task was admitted elsewhere, or the stream lingered out). Waits for the result, so a reader of
 * a running task sees its tokens when it ends. Returns undefined for an unknown task.
 */
export async function streamPartsFromWorkflow(client: Client, taskId: string, engine: string): Promise<StreamPart[] | undefined> {
  const handle = client.workflow.getHandle(taskWorkflowId(taskId));
  let memo: AdmissionMemo | undefined;
  try {
    const description = await handle.describe();
    memo = (description.memo as { admission?: AdmissionMemo } | undefined)?.admission;
  } catch (error) {
    if ((error as { name?: unknown }).name === 'WorkflowNotFoundError') return undefined;
    throw error;
  }
  const parts: StreamPart[] = [
    { type: 'started', queuePosition: memo?.queuePosition ?? 0, predictedStartMs: memo?.predictedStartMs ?? 0 },
  ];
  try {
    const result = (await handle.result()) as TaskResult;
    result.tokens.forEach((text, index) => parts.push({ type: 'token', text, index }));
    parts.push({ type: 'end', tokensOut: result.tokensOut, decodeMs: result.decodeMs, canceled: result.state === 'cancelled' });
  } catch (error) {
    const cause = (error as { cause?: { type?: unknown; message?: unknown } }).cause;
    const code = isErrorCode(cause?.type) ? cause.type : ErrorCode.INTERNAL;
    const message = typeof cause?.message === 'string' ? cause.message : 'task failed';
    parts.push({ type: 'error', code, message, engine });
  }
  return parts;
}
