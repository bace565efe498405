import type { TaskRequest } from '../../core/task-request';
import type { PolicyRequest } from './snapshot';
import { toU32 } from './snapshot';

/**
 * The snapshot's `request` for a TaskRequest: every field a policy may use, the prompt reduced to
 * its size in bytes (a policy never sees prompt text), numbers saturated into the ABI's u32.
 * `tenant` is who the gateway authenticated; the TaskRequest does not carry it.
 */
export function policyRequestFromTask(task: TaskRequest, tenant: string): PolicyRequest {
  const promptBytes =
    task.prompt !== undefined
      ? Buffer.byteLength(task.prompt, 'utf8')
      : (task.inputs ?? []).reduce((total, input) => total + Buffer.byteLength(input, 'utf8'), 0);
  return {
    maxTokens: toU32(task.max_tokens),
    ctx: toU32(task.ctx),
    deadlineMs: toU32(task.deadline_ms),
    ...(task.expected_tokens !== undefined ? { expectedTokens: toU32(task.expected_tokens) } : {}),
    promptBytes: toU32(promptBytes),
    priority: task.priority,
    workload: task.workload,
    engine: task.engine,
    ...(task.kv_hint !== undefined ? { kvHint: task.kv_hint } : {}),
    taskId: task.task_id,
    sessionId: task.session_id,
    tenant,
    modelRef: task.model_ref,
  };
}
