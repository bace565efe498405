import { request } from 'undici';
import { taskWorkflowId } from '../../core/ids';
import { readStream, waitFor } from '../support/sse-client';
import { announceReadyReplica } from '../support/ready-record';
import { startTestStack, taskRequest, TEST_AUTH_HEADERS, type StackOptions, type TestStack } from '../support/stack';

const stacks: TestStack[] = [];
afterAll(async () => {
  await Promise.all(stacks.map((stack) => stack.stop()));
});

/**
 * No replica polls these pools, so every admitted task stays queued and the bound is what is tested (a
 * status record says the replica is Ready: test/support/ready-record.ts).
 */
async function queuedStack(options: StackOptions): Promise<TestStack> {
  const stack = await startTestStack({ ...options, inProcessReplicas: 0 });
  stacks.push(stack);
  await announceReadyReplica(stack, options.slots ?? 4);
  return stack;
}

async function submit(baseUrl: string, body: Record<string, unknown>, headers: Record<string, string> = {}) {
  const response = await request(`${baseUrl}/v1/tasks`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...TEST_AUTH_HEADERS, ...headers },
    body: JSON.stringify(body),
  });
  const text = await response.body.text();
  return { status: response.statusCode, headers: response.headers, body: JSON.parse(text) as Record<string, unknown> };
}

const queued = (stack: TestStack, overrides: Record<string, unknown> = {}) => taskRequest(stack, { deadline_ms: 20_000, ...overrides });

test('ORCH-3004 ORCH-3005 ORCH-2007 OC-CTRL-2011: a full queue under `reject` answers 429 with Retry-After, X-Backoff-Ms and the policy label', async () => {
  const stack = await queuedStack({ queue: { capacity: 2, full_policy: 'reject' } });
  expect((await submit(stack.url, queued(stack))).status).toBe(202);
  expect((await submit(stack.url, queued(stack))).status).toBe(202);
  const refused = await submit(stack.url, queued(stack));
  expect(refused.status).toBe(429);
  expect(refused.headers['retry-after']).toMatch(/^\d+$/);
  expect(refused.headers['x-backoff-ms']).toMatch(/^\d+$/);
  expect(Number(refused.headers['retry-after'])).toBe(Math.max(1, Math.floor(Number(refused.headers['x-backoff-ms']) / 1000)));
  expect(refused.body).toEqual(expect.objectContaining({ code: 'ADMISSION_REJECT', policy_label: 'reject', retriable: true, engine: 'llamacpp', pool_id: stack.poolId }));
  expect(refused.body['retry_after_ms']).toBe(Number(refused.headers['x-backoff-ms']));
});

test('ORCH-3005 OC-CORE-1002: `drop-lru` admits the new task and evicts the oldest queued one, whose stream ends with QUEUE_FULL_DROP_LRU', async () => {
  const stack = await queuedStack({ queue: { capacity: 2, full_policy: 'drop-lru' } });
  const oldest = queued(stack);
  const second = queued(stack);
  const newest = queued(stack);
  expect((await submit(stack.url, oldest)).status).toBe(202);
  expect((await submit(stack.url, second)).status).toBe(202);
  expect((await submit(stack.url, newest)).status).toBe(202);

  const events = await readStream(`${stack.url}/v1/tasks/${String(oldest['task_id'])}/stream`).finished;
  expect(events.at(-1)).toEqual(expect.objectContaining({ event: 'error', data: expect.objectContaining({ code: 'QUEUE_FULL_DROP_LRU', engine: 'llamacpp' }) }));
  await expect(stack.client.workflow.getHandle(taskWorkflowId(String(oldest['task_id']))).result()).rejects.toMatchObject({
    cause: expect.objectContaining({ type: 'QUEUE_FULL_DROP_LRU' }),
  });
  const secondState = await stack.client.workflow.getHandle(taskWorkflowId(String(second['task_id']))).describe();
  expect(secondState.status.name).toBe('RUNNING');
  // Let the backlog refresh see Temporal's count, which still includes the evicted task's activity.
  await new Promise((resolve) => setTimeout(resolve, 800));
  expect(stack.gateway.admission.depth(stack.poolId).interactive).toBe(2);
});

test('ORCH-3005: `shed-low-priority` lets an interactive task evict the newest batch task; a batch task finds the queue full', async () => {
  const stack = await queuedStack({ queue: { capacity: 2, full_policy: 'shed-low-priority' } });
  const olderBatch = queued(stack, { priority: 'batch' });
  const newerBatch = queued(stack, { priority: 'batch' });
  expect((await submit(stack.url, olderBatch)).status).toBe(202);
  expect((await submit(stack.url, newerBatch)).status).toBe(202);
  const anotherBatch = await submit(stack.url, queued(stack, { priority: 'batch' }));
  expect(anotherBatch.status).toBe(429);
  expect(anotherBatch.body['policy_label']).toBe('shed-low-priority');

  expect((await submit(stack.url, queued(stack, { priority: 'interactive' }))).status).toBe(202);
  const shed = await readStream(`${stack.url}/v1/tasks/${String(newerBatch['task_id'])}/stream`).finished;
  expect(shed.at(-1)?.data['code']).toBe('QUEUE_FULL_DROP_LRU');
  expect((await stack.client.workflow.getHandle(taskWorkflowId(String(olderBatch['task_id']))).describe()).status.name).toBe('RUNNING');
});

test('OC-CORE-1001: each priority class has its own bound inside the pool bound', async () => {
  const stack = await queuedStack({ queue: { capacity: 10, full_policy: 'reject' }, priorities: [{ name: 'batch', queue_capacity: 1 }] });
  expect((await submit(stack.url, queued(stack, { priority: 'batch' }))).status).toBe(202);
  expect((await submit(stack.url, queued(stack, { priority: 'batch' }))).status).toBe(429);
  expect((await submit(stack.url, queued(stack, { priority: 'interactive' }))).status).toBe(202);
});

test('ORCH-3006: a client over its rate limit gets 429 rate-limit; another client is unaffected', async () => {
  const stack = await queuedStack({ queue: { capacity: 50 }, priorities: [{ name: 'interactive', rate_limit_rps: 2 }] });
  const statuses = [];
  // The client is the API key's tenant: tenant-a is greedy, tenant-b polite.
  for (let index = 0; index < 3; index += 1) statuses.push((await submit(stack.url, queued(stack))).status);
  expect(statuses).toEqual([202, 202, 429]);
  const limited = await submit(stack.url, queued(stack));
  expect(limited.body).toEqual(expect.objectContaining({ code: 'ADMISSION_REJECT', policy_label: 'rate-limit' }));
  expect((await submit(stack.url, queued(stack), { authorization: `Bearer ${stack.apiKeys.tenantB}` })).status).toBe(202);
});

test('ORCH-3014 DEADLINE_UNMET: a deadline the queue cannot meet is refused before enqueue', async () => {
  const stack = await queuedStack({ slots: 1, queue: { capacity: 50 } });
  for (let index = 0; index < 3; index += 1) expect((await submit(stack.url, queued(stack))).status).toBe(202);
  const hopeless = queued(stack, { deadline_ms: 1 });
  const refused = await submit(stack.url, hopeless);
  expect(refused.status).toBe(400);
  expect(refused.body['code']).toBe('DEADLINE_UNMET');
  await expect(stack.client.workflow.getHandle(taskWorkflowId(String(hopeless['task_id']))).describe()).rejects.toMatchObject({ name: 'WorkflowNotFoundError' });
});

test('ORCH-3004: with two gateways the bound holds through Temporal’s backlog — within one refresh, at most one capacity per gateway', async () => {
  const capacity = 4;
  const stack = await queuedStack({ queue: { capacity, full_policy: 'reject' } });
  const second = await stack.addGateway();

  // A burst on both gateways at once: each sees at least its own tasks, so neither admits more than the capacity.
  const burst = await Promise.all(Array.from({ length: 12 }, (_unused, index) => submit(index % 2 === 0 ? stack.url : second.url, queued(stack))));
  const admitted = burst.filter((response) => response.status === 202).length;
  expect(admitted).toBeGreaterThanOrEqual(capacity);
  expect(admitted).toBeLessThanOrEqual(2 * capacity);
  expect(burst.every((response) => response.status === 202 || response.status === 429)).toBe(true);

  // Once each gateway's backlog view has caught up, neither admits anything more.
  await waitFor(() => second.admission.depth(stack.poolId).interactive >= admitted && stack.gateway.admission.depth(stack.poolId).interactive >= admitted, 10_000, 'both gateways to see the whole backlog');
  expect((await submit(stack.url, queued(stack))).status).toBe(429);
  expect((await submit(second.url, queued(stack))).status).toBe(429);
});
