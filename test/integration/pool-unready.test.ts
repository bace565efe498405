import { request } from 'undici';
import { taskWorkflowId } from '../../core/ids';
import { waitFor } from '../support/sse-client';
import { startTestStack, taskRequest, type TestStack } from '../support/stack';

/**
 * ORCH-3018 / OC-POOL-3012: a pool with no Ready replica refuses a task at once with POOL_UNREADY (503,
 * Retry-After), before anything is enqueued; once a replica is Ready the same request is admitted.
 */
let stack: TestStack;

beforeAll(async () => {
  stack = await startTestStack({ inProcessReplicas: 0 });
});
afterAll(async () => {
  await stack.stop();
});

async function submit(body: Record<string, unknown>): Promise<{ status: number; retryAfter: string | undefined; body: Record<string, unknown> }> {
  const response = await request(`${stack.url}/v1/tasks`, { method: 'POST', headers: { 'content-type': 'application/json', ...stack.authHeaders }, body: JSON.stringify(body) });
  return { status: response.statusCode, retryAfter: response.headers['retry-after'] as string | undefined, body: (await response.body.json()) as Record<string, unknown> };
}

test('ORCH-3018 OC-POOL-3012: no Ready replica → 503 POOL_UNREADY with Retry-After before enqueue (no workflow); a Ready replica → 202', async () => {
  const body = taskRequest(stack);
  // The gateway reads the pool's queue every 250 ms; until its first read it admits.
  let refused: Awaited<ReturnType<typeof submit>> | undefined;
  await waitFor(async () => {
    refused = await submit({ ...taskRequest(stack), task_id: body['task_id'] });
    return refused.status === 503;
  }, 5_000, 'the refusal');
  expect(refused?.body).toMatchObject({ code: 'POOL_UNREADY', retriable: true, pool_id: stack.poolId });
  expect(refused?.retryAfter).toBe('2');
  await expect(stack.client.workflow.getHandle(taskWorkflowId(String(body['task_id']))).describe()).rejects.toMatchObject({ name: 'WorkflowNotFoundError' });

  await stack.addPoolReplica(0);
  // Within one read of the queue (250 ms) the gateway sees the replica polling.
  await waitFor(async () => (await submit(taskRequest(stack))).status === 202, 3_000, 'a Ready replica to admit tasks');
}, 60_000);
