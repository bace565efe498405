import type { ChildProcess } from 'node:child_process';
import { request } from 'undici';
import { taskWorkflowId } from '../../core/ids';
import type { TaskResult } from '../../core/task-workflow-contract';
import { readStream, tokensOf, waitFor } from '../support/sse-client';
import { startReplicaProcess } from '../support/replica-process';
import { startTestStack, taskRequest, type TestStack } from '../support/stack';


let stack: TestStack;
let child: ChildProcess | undefined;

beforeAll(async () => {
  stack = await startTestStack({ slots: 1, ttftMs: 10, interTokenMs: 40, heartbeatMs: 1_000, inProcessReplicas: 0 });
});
afterAll(async () => {
  child?.kill('SIGKILL');
  await stack.stop();
});


async function poolReady(): Promise<boolean> {
  const response = await request(`${stack.url}/v1/pools/${stack.poolId}/health`, { headers: stack.authHeaders });
  const health = (await response.body.json()) as { ready: boolean };
  return health.ready;
}

test('chaos: a pool worker killed mid-stream loses nothing — the task resumes on another replica, each token once, in order', async () => {
  child = startReplicaProcess(stack, 0);
  await waitFor(poolReady, 30_000, 'the child replica to poll');

  const body = taskRequest(stack, { max_tokens: 60, seed: 1234 });
  const taskId = String(body['task_id']);
  const admitted = await request(`${stack.url}/v1/tasks`, { method: 'POST', headers: { 'content-type': 'application/json', ...stack.authHeaders }, body: JSON.stringify(body) });
  expect(admitted.statusCode).toBe(202);
  await admitted.body.dump();
  const reading = readStream(`${stack.url}/v1/tasks/${taskId}/stream`);
  await waitFor(() => tokensOf(reading.events).indices.length >= 5, 15_000, 'five tokens from the first replica');

  child.kill('SIGKILL');
  const tokensBeforeKill = tokensOf(reading.events).indices.length;
  await stack.addPoolReplica(1);

  const events = await reading.finished;
  const { text, indices } = tokensOf(events);
  expect(indices).toEqual([...Array(60).keys()]);
  expect(tokensBeforeKill).toBeLessThan(60);
  expect(events.at(-1)).toEqual(expect.objectContaining({ event: 'end', data: { tokens_out: 60, decode_ms: expect.any(Number) } }));
  const dispatches = events.filter((event) => event.event === 'metrics' && event.data['phase'] === 'dispatched');
  expect(dispatches.map((event) => event.data['replica_id'])).toEqual([`${stack.poolId}-r0`, `${stack.poolId}-r1`]);

  const result = (await stack.client.workflow.getHandle(taskWorkflowId(taskId)).result()) as TaskResult;
  expect(result.state).toBe('completed');
  expect(result.attempt).toBe(2);
  expect(result.text).toBe(text);
});
