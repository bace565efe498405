import { FastStartInputSchema } from '../../gpu-workers/fast-start/fast-start-server';
import type { TaskWorkflowInput } from '../../core/task-workflow-contract';

/**
 * The fast-start listener parses the workflow input a gateway sends; a field it dropped would make the
 * replica decode another request than the durable workflow holds (found with an OpenAI chat request,
 * whose messages were dropped and decoded as an empty prompt).
 */
test('fast start (ADR 2026-12-06): every field of a workflow input survives the listener\'s parse — chat messages and sampler overrides included', () => {
  const input: TaskWorkflowInput = {
    version: 1,
    request: {
      task_id: '00000000-0000-4000-8000-000000000001',
      session_id: '00000000-0000-4000-8000-000000000002',
      workload: 'completion',
      model_ref: 'm',
      engine: 'llamacpp',
      ctx: 512,
      priority: 'interactive',
      prompt: '',
      max_tokens: 8,
      deadline_ms: 30_000,
      seed: 3,
      sampler_profile_version: 'v1',
      determinism: 'strict',
    },
    poolId: 'p',
    clientId: 'tenant-a',
    admittedAtMs: 1,
    timeouts: { wallMs: 1_000, idleMs: 1_000, heartbeatMs: 1_000, maxAttempts: 3 },
    streamSinkUrl: 'http://127.0.0.1:1',
    placement: { replicaId: 'p-r0', waitMs: 0, reason: 'fast-start', fastStartUrl: 'http://127.0.0.1:2' },
    chat: [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'hi' }],
    sampling: { temperature: 0.2, top_p: 0.9, stop: ['\n'] },
  };
  expect(FastStartInputSchema.parse(JSON.parse(JSON.stringify(input)))).toEqual(input);
});
