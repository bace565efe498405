import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { temporal } from '@temporalio/proto';
import { randomUUID } from 'node:crypto';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { NativeConnection, Worker } from '@temporalio/worker';
import { request } from 'undici';
import { taskWorkflowId } from '../../core/ids';
import { TASK_WORKFLOW_TYPE, type EngineRunOutcome, type TaskResult, type TaskWorkflowInput } from '../../core/task-workflow-contract';
import { poolTaskQueue, WORKFLOW_TASK_QUEUE } from '../../core/task-queues';
import { readStream, tokensOf, waitFor } from '../support/sse-client';
import { startTestStack, taskRequest, type TestStack } from '../support/stack';

const HISTORY_DIR = join(__dirname, '..', 'fixtures', 'histories');
let stack: TestStack;

beforeAll(async () => {
  stack = await startTestStack({ slots: 2 });
});
afterAll(async () => {
  await stack.stop();
});

async function submitAndFinish(overrides: Record<string, unknown> = {}, headers: Record<string, string> = {}) {
  const body = taskRequest(stack, overrides);
  const response = await request(`${stack.url}/v1/tasks`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...stack.authHeaders, ...headers },
    body: JSON.stringify(body),
  });
  expect(response.statusCode).toBe(202);
  await response.body.dump();
  const events = await readStream(`${stack.url}/v1/tasks/${String(body['task_id'])}/stream`).finished;
  return { taskId: String(body['task_id']), events };
}

test('every job is findable by its search attributes (Web UI): task id, pool, priority, client, state', async () => {
  const { taskId } = await submitAndFinish({ priority: 'batch', max_tokens: 3 }, { 'x-client-id': 'tenant-a' });
  const query = `TaskId = '${taskId}' AND Pool = '${stack.poolId}' AND Priority = 'batch' AND ClientId = 'tenant-a' AND TaskState = 'completed'`;
  let found: string[] = [];
  await waitFor(
    async () => {
      found = [];
      for await (const execution of stack.client.workflow.list({ query })) found.push(execution.workflowId);
      return found.length === 1;
    },
    15_000,
    'the visibility record',
  );
  expect(found).toEqual([taskWorkflowId(taskId)]);
  const description = await stack.client.workflow.getHandle(taskWorkflowId(taskId)).describe();
  expect(description.searchAttributes['Replica']).toEqual([`${stack.poolId}-r0`]);
  expect(description.searchAttributes['Engine']).toEqual(['llamacpp']);
});

test('design §8: a batch pipeline starts the task workflow with the Temporal client and gets the full result', async () => {
  const request = taskRequest(stack, { max_tokens: 5 });
  const input: TaskWorkflowInput = {
    version: 1,
    request: { ...(request as unknown as TaskWorkflowInput['request']), seed: 42, sampler_profile_version: 'v1' },
    poolId: stack.poolId,
    clientId: 'pipeline',
    admittedAtMs: Date.now(),
    timeouts: { wallMs: 30_000, idleMs: 5_000, heartbeatMs: 2_000, maxAttempts: 3 },
  };
  const result = (await stack.client.workflow.execute(TASK_WORKFLOW_TYPE, {
    workflowId: taskWorkflowId(String(request['task_id'])),
    taskQueue: WORKFLOW_TASK_QUEUE,
    args: [input],
  })) as TaskResult;
  expect(result).toEqual(expect.objectContaining({ version: 1, state: 'completed', tokensOut: 5 }));
  expect(result.tokens).toHaveLength(5);
  expect(result.text).toBe(result.tokens.join(''));
});

test('REPLICA_EXHAUSTED only bounces a task back to the pool queue: a task whose every attempt met a full replica is requeued with fresh, higher attempt numbers and completes', async () => {
  const poolId = `bounce-${randomUUID().slice(0, 8)}`;
  const request = taskRequest(stack, { max_tokens: 2 });
  const input: TaskWorkflowInput = {
    version: 1,
    request: { ...(request as unknown as TaskWorkflowInput['request']), seed: 7, sampler_profile_version: 'v1' },
    poolId,
    clientId: 'pipeline',
    admittedAtMs: Date.now(),
    timeouts: { wallMs: 30_000, idleMs: 5_000, heartbeatMs: 2_000, maxAttempts: 3 },
  };
  // Five bounces: more than one activity's three attempts.
  const attemptsSeen: number[] = [];
  const runEngineTask = ({ attemptOffset }: { attemptOffset?: number }): Promise<EngineRunOutcome> => {
    attemptsSeen.push(Context.current().info.attempt + (attemptOffset ?? 0));
    if (attemptsSeen.length <= 5) throw ApplicationFailure.create({ type: 'REPLICA_EXHAUSTED', message: 'replica full' });
    return Promise.resolve({ outcome: 'completed', tokens: ['a', 'b'], tokensOut: 2, decodeMs: 1, queueTimeMs: 1, replicaId: `${poolId}-r0`, engineVersion: 'test', streamEnded: true, attempt: attemptsSeen.at(-1) ?? 0 });
  };
  const connection = await NativeConnection.connect({ address: stack.temporalAddress });
  try {
    const worker = await Worker.create({ connection, namespace: stack.config.temporal.namespace, taskQueue: poolTaskQueue(poolId), activities: { runEngineTask } });
    const result = (await worker.runUntil(
      stack.client.workflow.execute(TASK_WORKFLOW_TYPE, { workflowId: taskWorkflowId(String(request['task_id'])), taskQueue: WORKFLOW_TASK_QUEUE, args: [input] }),
    )) as TaskResult;
    expect(result).toEqual(expect.objectContaining({ state: 'completed', tokens: ['a', 'b'] }));
    expect(attemptsSeen).toHaveLength(6);
    // Strictly increasing across the requeue: the gateway drops chunks of an attempt older than one it saw.
    expect(attemptsSeen).toEqual([...attemptsSeen].sort((a, b) => a - b));
    expect(new Set(attemptsSeen).size).toBe(6);
  } finally {
    await connection.close();
  }
}, 60_000);

test('ORCH-3016: an engine that goes silent past idle_ms ends the task with DECODE_TIMEOUT', async () => {
  const slow = await startTestStack({ slots: 1, ttftMs: 3_000, idleMs: 300 });
  try {
    const body = taskRequest(slow, { max_tokens: 4 });
    const response = await request(`${slow.url}/v1/tasks`, { method: 'POST', headers: { 'content-type': 'application/json', ...slow.authHeaders }, body: JSON.stringify(body) });
    expect(response.statusCode).toBe(202);
    await response.body.dump();
    const events = await readStream(`${slow.url}/v1/tasks/${String(body['task_id'])}/stream`).finished;
    expect(events.at(-1)).toEqual(expect.objectContaining({ event: 'error', data: expect.objectContaining({ code: 'DECODE_TIMEOUT', engine: 'llamacpp' }) }));
    await expect(slow.client.workflow.getHandle(taskWorkflowId(String(body['task_id']))).result()).rejects.toMatchObject({
      cause: expect.objectContaining({ type: 'DECODE_TIMEOUT' }),
    });
  } finally {
    await slow.stop();
  }
});

test('ORCH-3016 OC-CORE-1022: a decode that runs past wall_ms while tokens still flow ends with DECODE_TIMEOUT (the wall watchdog, not the idle one)', async () => {
  const slow = await startTestStack({ slots: 1, ttftMs: 5, interTokenMs: 50, wallMs: 600, idleMs: 5_000 });
  try {
    const body = taskRequest(slow, { max_tokens: 200 });
    const response = await request(`${slow.url}/v1/tasks`, { method: 'POST', headers: { 'content-type': 'application/json', ...slow.authHeaders }, body: JSON.stringify(body) });
    expect(response.statusCode).toBe(202);
    await response.body.dump();
    const events = await readStream(`${slow.url}/v1/tasks/${String(body['task_id'])}/stream`).finished;
    // Tokens kept coming every 50 ms (the idle limit is 5 s): only the wall limit can have stopped it.
    const tokens = tokensOf(events).indices.length;
    expect(tokens).toBeGreaterThan(3);
    expect(tokens).toBeLessThan(200);
    expect(events.at(-1)).toEqual(expect.objectContaining({ event: 'error', data: expect.objectContaining({ code: 'DECODE_TIMEOUT', message: expect.stringContaining('decode ran past 600 ms') }) }));
    await expect(slow.client.workflow.getHandle(taskWorkflowId(String(body['task_id']))).result()).rejects.toMatchObject({ cause: expect.objectContaining({ type: 'DECODE_TIMEOUT' }) });
  } finally {
    await slow.stop();
  }
});

test('ORCH-2103: pool health shows the ready replica and says the engine is the mock', async () => {
  const response = await request(`${stack.url}/v1/pools/${stack.poolId}/health`, { headers: stack.authHeaders });
  expect(response.statusCode).toBe(200);
  const health = (await response.body.json()) as { ready: boolean; live: boolean; metrics: Record<string, unknown> };
  expect(health).toEqual(expect.objectContaining({ live: true, ready: true, draining: false }));
  expect(health.metrics['mock_engine']).toBe(true);
  expect(health.metrics['replicas']).toEqual([expect.objectContaining({ replica_id: `${stack.poolId}-r0`, mock_engine: true })]);
  const unknown = await request(`${stack.url}/v1/pools/nope/health`, { headers: stack.authHeaders });
  expect(unknown.statusCode).toBe(404);
  await unknown.body.dump();
});

describe('workflow replay (determinism of workflow code)', () => {
  test('recorded histories replay without non-determinism', async () => {
    const files = readdirSync(HISTORY_DIR).filter((file) => file.endsWith('.json'));
    expect(files.length).toBeGreaterThanOrEqual(2);
    const bundle = readFileSync(String(process.env['ORCH_TEST_WORKFLOW_BUNDLE']), 'utf8');
    for (const file of files) {
      const history = temporal.api.history.v1.History.fromObject(JSON.parse(readFileSync(join(HISTORY_DIR, file), 'utf8')) as Record<string, unknown>);
      await Worker.runReplayHistory({ workflowBundle: { code: bundle } }, history, file);
    }
  });

  test('a fresh completed and a fresh cancelled task replay; ORCH_RECORD_HISTORIES=1 saves them as fixtures', async () => {
    const completed = await submitAndFinish({ max_tokens: 4 });
    const cancelledBody = taskRequest(stack, { max_tokens: 400 });
    await request(`${stack.url}/v1/tasks`, { method: 'POST', headers: { 'content-type': 'application/json', ...stack.authHeaders }, body: JSON.stringify(cancelledBody) }).then((response) => response.body.dump());
    const reading = readStream(`${stack.url}/v1/tasks/${String(cancelledBody['task_id'])}/stream`);
    await waitFor(() => tokensOf(reading.events).indices.length > 0, 10_000, 'a token');
    await request(`${stack.url}/v1/tasks/${String(cancelledBody['task_id'])}/cancel`, { method: 'POST', headers: stack.authHeaders }).then((response) => response.body.dump());
    await reading.finished;
    const bundle = readFileSync(String(process.env['ORCH_TEST_WORKFLOW_BUNDLE']), 'utf8');
    for (const [name, taskId] of [['task-completed', completed.taskId], ['task-cancelled', String(cancelledBody['task_id'])]] as const) {
      const handle = stack.client.workflow.getHandle(taskWorkflowId(taskId));
      await handle.result();
      const history = await handle.fetchHistory();
      await Worker.runReplayHistory({ workflowBundle: { code: bundle } }, history, name);
      if (process.env['ORCH_RECORD_HISTORIES'] === '1') writeFileSync(
          join(HISTORY_DIR, `${name}.json`),
          JSON.stringify(temporal.api.history.v1.History.toObject(temporal.api.history.v1.History.fromObject(history), { longs: String, enums: String, bytes: String }), null, 1),
        );
    }
  });
});
