import { request } from 'undici';
import { poolStateWorkflowId } from '../../core/pool-state';
import { startTestStack, type TestStack } from '../support/stack';

let stack: TestStack;
beforeAll(async () => {
  stack = await startTestStack({ slots: 1, ttftMs: 1, interTokenMs: 1 });
});
afterAll(async () => {
  await stack.stop();
});

/** Starts an operation and waits for its workflow: the next one then never finds the pool busy. */
async function operate(path: string, body?: unknown): Promise<number> {
  const response = await request(`${stack.url}/v1/pools/${stack.poolId}/${path}`, {
    method: 'POST',
    headers: { ...stack.authHeaders, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const answer = (await response.body.json()) as { operation_id?: string };
  if (response.statusCode === 202 && answer.operation_id) await stack.client.workflow.getHandle(answer.operation_id).result();
  return response.statusCode;
}

async function poolStateRunId(): Promise<string> {
  return (await stack.client.workflow.getHandle(poolStateWorkflowId(stack.poolId)).describe()).runId;
}

test('ORCH-2101 regression (found by the schemathesis run): pool operations keep working after the pool-state workflow continues as new', async () => {
  expect(await operate('drain', { deadline_ms: 0 })).toBe(202);
  const firstRun = await poolStateRunId();
  // Every operation is a few changes of the pool's state; the workflow continues as new every 200 of them.
  let cycles = 0;
  while ((await poolStateRunId()) === firstRun) {
    expect([await operate('resume'), await operate('drain', { deadline_ms: 0 })]).toEqual([202, 202]);
    cycles += 1;
    expect(cycles).toBeLessThan(200);
  }
  // The next operations claim the pool in the new run (they answered 500 WorkflowNotFound before the fix).
  expect([await operate('resume'), await operate('drain', { deadline_ms: 0 }), await operate('resume')]).toEqual([202, 202, 202]);
}, 120_000);
