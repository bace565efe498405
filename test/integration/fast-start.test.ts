import type { ChildProcess } from 'node:child_process';
import { request } from 'undici';
import { taskWorkflowId } from '../../core/ids';
import type { TaskResult } from '../../core/task-workflow-contract';
import { readStream, tokensOf, waitFor, type ReceivedEvent } from '../support/sse-client';
import { startReplicaProcess } from '../support/replica-process';
import { startTestStack, taskRequest, type TestStack } from '../support/stack';

/**
 * Fast start (.specs/decisions/2026-12-06-fast-start.md, issue 10 item 3): a replica with a free slot
 * starts decoding while the workflow is written, and the workflow collects that run (a local activity)
 * instead of starting a second one.
 */

let stack: TestStack;
let child: ChildProcess | undefined;

beforeAll(async () => {
  stack = await startTestStack({ slots: 1, ttftMs: 10, interTokenMs: 40, heartbeatMs: 1_000, inProcessReplicas: 0 });
});
afterAll(async () => {
  child?.kill('SIGKILL');
  await stack.stop();
});

/** The gateway knows where the replica takes fast starts (its status record carries the listener's URL). */
async function fastStartReplicas(): Promise<string[]> {
  await stack.gateway.replicas.refresh();
  return stack.gateway.replicas
    .replicas(stack.poolId)
    .filter((status) => status.ready && typeof status.fast_start_url === 'string')
    .map((status) => status.replica_id);
}

/** The gateway's (up to a second old) view shows the replica with a free slot: a fast start will be tried. */
async function idleInGatewayView(replicaId: string): Promise<boolean> {
  await stack.gateway.replicas.refresh();
  const status = stack.gateway.replicas.replica(stack.poolId, replicaId);
  return status?.ready === true && typeof status.fast_start_url === 'string' && status.slots_busy === 0;
}

async function submit(overrides: Record<string, unknown>): Promise<string> {
  const body = taskRequest(stack, overrides);
  const response = await request(`${stack.url}/v1/tasks`, { method: 'POST', headers: { 'content-type': 'application/json', ...stack.authHeaders }, body: JSON.stringify(body) });
  expect(response.statusCode).toBe(202);
  await response.body.dump();
  return String(body['task_id']);
}

function dispatches(events: readonly ReceivedEvent[]): ReceivedEvent[] {
  return events.filter((event) => event.event === 'metrics' && event.data['phase'] === 'dispatched');
}


test('fast start: an idle replica decodes before the workflow is scheduled, and the workflow collects that run — one dispatch, one engine call', async () => {
  await stack.addPoolReplica(0);
  await waitFor(async () => (await fastStartReplicas()).length === 1, 15_000, 'the gateway to see the replica take fast starts');

  const taskId = await submit({ max_tokens: 12, seed: 7 });
  const events = await readStream(`${stack.url}/v1/tasks/${taskId}/stream`).finished;

  expect(tokensOf(events).indices).toEqual([...Array(12).keys()]);
  const [dispatched, ...more] = dispatches(events);
  expect(more).toEqual([]);
  expect(dispatched?.data).toEqual(expect.objectContaining({ attempt: 1, placement_reason: 'fast-start', lane_hit: true, replica_id: `${stack.poolId}-r0` }));
  const result = (await stack.client.workflow.getHandle(taskWorkflowId(taskId)).result()) as TaskResult;
  expect(result).toEqual(expect.objectContaining({ state: 'completed', attempt: 1, placement: { replicaId: `${stack.poolId}-r0`, reason: 'fast-start', laneHit: true } }));
  expect(result.text).toBe(tokensOf(events).text);
  // One engine call: collecting the run started no second generation (the replica logs one line per decode).
  const engineCalls = stack.logs.lines().filter((line) => line['msg'] === 'task decoded' && line['job_id'] === taskId);
  expect(engineCalls).toHaveLength(1);
});

test('fast start only where a slot is free: a task submitted while the one slot decodes waits in the pool queue and runs after it', async () => {
  await waitFor(() => idleInGatewayView(`${stack.poolId}-r0`), 10_000, 'the gateway to see the replica idle');
  const running = await submit({ max_tokens: 20 });
  const runningStream = readStream(`${stack.url}/v1/tasks/${running}/stream`);
  await waitFor(() => tokensOf(runningStream.events).indices.length >= 1, 10_000, 'the first task to decode');
  const queued = await submit({ max_tokens: 4 });
  const queuedEvents = await readStream(`${stack.url}/v1/tasks/${queued}/stream`).finished;
  const runningEvents = await runningStream.finished;
  expect(dispatches(runningEvents)[0]?.data['placement_reason']).toBe('fast-start');
  expect(dispatches(queuedEvents).map((event) => event.data['placement_reason'])).toEqual([undefined]);
  expect(queuedEvents.at(-1)?.event).toBe('end');
});

test('fast start: a cancel while the fast-started run decodes ends it cancelled and frees the engine slot', async () => {
  await waitFor(() => idleInGatewayView(`${stack.poolId}-r0`), 10_000, 'the gateway to see the replica idle');
  const taskId = await submit({ max_tokens: 200 });
  const reading = readStream(`${stack.url}/v1/tasks/${taskId}/stream`);
  await waitFor(() => tokensOf(reading.events).indices.length >= 2, 10_000, 'two tokens');
  const cancelled = await request(`${stack.url}/v1/tasks/${taskId}/cancel`, { method: 'POST', headers: stack.authHeaders });
  expect(cancelled.statusCode).toBe(204);
  await cancelled.body.dump();
  const events = await reading.finished;
  expect(dispatches(events)[0]?.data['placement_reason']).toBe('fast-start');
  expect(tokensOf(events).indices.length).toBeLessThan(200);
  const result = (await stack.client.workflow.getHandle(taskWorkflowId(taskId)).result()) as TaskResult;
  expect(result.state).toBe('cancelled');
  // The slot is free again: the next task is fast-started too and completes.
  await waitFor(() => idleInGatewayView(`${stack.poolId}-r0`), 10_000, 'the slot to be free');
  const next = await submit({ max_tokens: 3 });
  const nextEvents = await readStream(`${stack.url}/v1/tasks/${next}/stream`).finished;
  expect(dispatches(nextEvents)[0]?.data['placement_reason']).toBe('fast-start');
  expect(nextEvents.at(-1)?.event).toBe('end');
});

test('chaos: the replica decoding a fast-started task is SIGKILLed — the task resumes on another replica, each token once, in order', async () => {
  await Promise.all(stack.poolWorkers.splice(0).map((replica) => replica.stop()));
  child = startReplicaProcess(stack, 1);
  await waitFor(async () => (await fastStartReplicas()).includes(`${stack.poolId}-r1`), 30_000, 'the child replica to take fast starts');

  const taskId = await submit({ max_tokens: 60, seed: 4321 });
  const reading = readStream(`${stack.url}/v1/tasks/${taskId}/stream`);
  await waitFor(() => tokensOf(reading.events).indices.length >= 5, 15_000, 'five tokens from the fast-started run');
  expect(dispatches(reading.events)[0]?.data).toEqual(expect.objectContaining({ placement_reason: 'fast-start', replica_id: `${stack.poolId}-r1` }));

  child.kill('SIGKILL');
  const tokensBeforeKill = tokensOf(reading.events).indices.length;
  await stack.addPoolReplica(2);

  const events = await reading.finished;
  const { text, indices } = tokensOf(events);
  expect(tokensBeforeKill).toBeLessThan(60);
  expect(indices).toEqual([...Array(60).keys()]);
  expect(events.at(-1)).toEqual(expect.objectContaining({ event: 'end', data: { tokens_out: 60, decode_ms: expect.any(Number) } }));
  expect(dispatches(events).map((event) => event.data['replica_id'])).toEqual([`${stack.poolId}-r1`, `${stack.poolId}-r2`]);

  const result = (await stack.client.workflow.getHandle(taskWorkflowId(taskId)).result()) as TaskResult;
  expect(result).toEqual(expect.objectContaining({ state: 'completed', attempt: 2, text, placement: { replicaId: `${stack.poolId}-r1`, reason: 'fast-start', laneHit: false } }));
});
