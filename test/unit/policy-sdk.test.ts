import { policyRequestFromTask } from '../../policy/sdk';
import { PolicyRequestSchema } from '../../policy/sdk/snapshot';
import type { TaskRequest } from '../../core/task-request';

describe('OC-POLICY-SDK-4110: the SDK maps a TaskRequest without I/O', () => {
  it('keeps the prompt out of the snapshot (only its size) and saturates numbers into u32', () => {
    const task: TaskRequest = {
      task_id: '7c0f1d2e-3a4b-4c5d-8e6f-000000000001',
      session_id: '5e1a2b3c-4d5e-4f60-8172-000000000001',
      workload: 'completion',
      model_ref: 'hf:org/model',
      engine: 'vllm',
      ctx: 4096,
      priority: 'batch',
      prompt: 'héllo',
      max_tokens: 64,
      deadline_ms: 10_000_000_000,
    };
    const request = policyRequestFromTask(task, 'tenant-a');
    expect(request).toEqual({
      maxTokens: 64,
      ctx: 4096,
      deadlineMs: 4_294_967_295,
      promptBytes: 6,
      priority: 'batch',
      workload: 'completion',
      engine: 'vllm',
      taskId: task.task_id,
      sessionId: task.session_id,
      tenant: 'tenant-a',
      modelRef: 'hf:org/model',
    });
    expect(JSON.stringify(request)).not.toContain('héllo');
    expect(PolicyRequestSchema.safeParse(request).success).toBe(true);
  });
});
