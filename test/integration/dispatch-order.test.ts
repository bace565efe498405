import { request } from 'undici';
import { taskWorkflowId } from '../../core/ids';
import { dispatchOrder } from '../support/dispatch-order';
import { waitFor } from '../support/sse-client';
import { announceReadyReplica } from '../support/ready-record';
import { startTestStack, taskRequest, type TestStack } from '../support/stack';

let stack: TestStack;

beforeAll(async () => {
  // One slot and no replica until the backlog is in place: the order Temporal dispatches in is then
  // exactly the order the engine activities start.
  stack = await startTestStack({ slots: 1, ttftMs: 1, interTokenMs: 1, inProcessReplicas: 0, queue: { capacity: 500 } });
  await announceReadyReplica(stack, 1);
});
afterAll(async () => {
  await stack.stop();
});

/** The tenant is whoever the API key belongs to; the fairness key is the tenant. */
async function submit(overrides: Record<string, unknown>, tenant: 'tenantA' | 'tenantB'): Promise<string> {
  const body = taskRequest(stack, { max_tokens: 2, deadline_ms: 60_000, ...overrides });
  const response = await request(`${stack.url}/v1/tasks`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${stack.apiKeys[tenant]}` },
    body: JSON.stringify(body),
  });
  expect(response.statusCode).toBe(202);
  await response.body.dump();
  return String(body['task_id']);
}

async function waitUntilQueued(taskIds: readonly string[]): Promise<void> {
  // Each workflow must have scheduled its engine activity before the replica starts polling.
  await waitFor(
    async () => {
      for (const taskId of taskIds) {
        const history = await stack.client.workflow.getHandle(taskWorkflowId(taskId)).fetchHistory();
        if (!(history.events ?? []).some((event) => event.activityTaskScheduledEventAttributes)) return false;
      }
      return true;
    },
    20_000,
    'every task to be in the pool queue',
  );
}

async function runAll(taskIds: readonly string[]): Promise<void> {
  // Results, not streams: a tenant may only stream its own tasks, and the order is read from histories.
  await Promise.all(taskIds.map((taskId) => stack.client.workflow.getHandle(taskWorkflowId(taskId)).result()));
}

test('ORCH-3051 OC-CORE-1004: a batch flood does not hold back interactive tasks — strict priority in the pool queue', async () => {
  const batch: string[] = [];
  for (let index = 0; index < 12; index += 1) batch.push(await submit({ priority: 'batch' }, 'tenantA'));
  const interactive: string[] = [];
  for (let index = 0; index < 3; index += 1) interactive.push(await submit({ priority: 'interactive' }, 'tenantA'));
  await waitUntilQueued([...batch, ...interactive]);

  await stack.addPoolReplica(0);
  await runAll([...batch, ...interactive]);
  const order = await dispatchOrder(stack.client, [...batch, ...interactive]);
  expect(order).toHaveLength(15);
  // Every interactive task before any batch task, although all batch tasks were queued first. (Order
  // within a class follows arrival at matching, which the server's asynchronous transfer tasks can
  // swap by a place or two relative to the histories, so it is not asserted here.)
  expect(new Set(order.slice(0, 3))).toEqual(new Set(interactive));
  expect(new Set(order.slice(3))).toEqual(new Set(batch));
});
