import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { temporal } from '@temporalio/proto';
import { Worker } from '@temporalio/worker';
import { request } from 'undici';
import { PoolOperationAcceptedSchema } from '../../api/openapi/api-schemas';
import { poolStateWorkflowId } from '../../core/pool-state';
import type { PoolOperationResult } from '../../core/pool-state';
import { taskWorkflowId } from '../../core/ids';
import type { TaskResult } from '../../core/task-workflow-contract';
import { readStream, tokensOf, waitFor } from '../support/sse-client';
import { startTestStack, taskRequest, type TestStack } from '../support/stack';

let stack: TestStack;
/** Operation workflow ids by kind (the last of each), replayed at the end. */
const operations = new Map<string, string>();

beforeAll(async () => {
  // One slot and a slow engine: a task runs for seconds, so a drain finds it in flight and a second one queued.
  stack = await startTestStack({ slots: 1, ttftMs: 10, interTokenMs: 50 });
});
afterAll(async () => {
  await stack.stop();
});

interface JsonResponse {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: Record<string, unknown>;
}

async function post(path: string, body?: unknown, headers: Record<string, string> = stack.authHeaders): Promise<JsonResponse> {
  const response = await request(`${stack.url}${path}`, {
    method: 'POST',
    headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.body.text();
  return { status: response.statusCode, headers: response.headers, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

async function health(): Promise<Record<string, unknown>> {
  const response = await request(`${stack.url}/v1/pools/${stack.poolId}/health`, { headers: stack.authHeaders });
  return (await response.body.json()) as Record<string, unknown>;
}

async function poolMode(): Promise<string> {
  const metrics = (await health())['metrics'] as { pool_state: { mode: string } };
  return metrics.pool_state.mode;
}

async function operate(path: string, body?: unknown): Promise<PoolOperationResult> {
  const started = await post(path, body);
  expect(started.status).toBe(202);
  expect(PoolOperationAcceptedSchema.safeParse(started.body).error?.issues ?? []).toEqual([]);
  const operationId = String(started.body['operation_id']);
  operations.set(String(started.body['kind']), operationId);
  return (await stack.client.workflow.getHandle(operationId).result()) as PoolOperationResult;
}

async function resume(): Promise<void> {
  const result = await operate(`/v1/pools/${stack.poolId}/resume`);
  expect(result.outcome).toBe('completed');
  // This gateway reads the pool's record in the background; it admits again once it has read `serving`.
  await waitFor(async () => (await poolMode()) === 'serving', 10_000, 'the gateway to see the pool serving');
}

async function submit(body: Record<string, unknown>): Promise<JsonResponse> {
  return post('/v1/tasks', body);
}

test('ORCH-2101 OC-CTRL-2002: a drain lets in-flight tasks finish, refuses new ones with 503, leaves queued ones queued; resume restarts the flow', async () => {
  const inFlight = taskRequest(stack, { max_tokens: 100 });
  const queued = taskRequest(stack, { max_tokens: 5 });
  expect((await submit(inFlight)).status).toBe(202);
  const inFlightReading = readStream(`${stack.url}/v1/tasks/${String(inFlight['task_id'])}/stream`);
  await waitFor(() => inFlightReading.events.some((event) => event.event === 'token'), 10_000, 'the first task to run');
  expect((await submit(queued)).status).toBe(202);

  const started = await post(`/v1/pools/${stack.poolId}/drain`, { deadline_ms: 120_000 });
  expect(started.status).toBe(202);
  expect(started.body).toEqual(expect.objectContaining({ pool_id: stack.poolId, kind: 'drain', mode: 'draining', deadline_ms: 120_000 }));
  const operationId = String(started.body['operation_id']);

  // One operation per pool at a time: the second names the running one.
  const second = await post(`/v1/pools/${stack.poolId}/drain`, { deadline_ms: 1_000 });
  expect(second.status).toBe(503);
  expect(second.body['code']).toBe('POOL_UNAVAILABLE');
  expect(String(second.body['message'])).toContain(operationId);

  // Refused before enqueue from the moment the drain was accepted.
  const refused = await submit(taskRequest(stack));
  expect(refused.status).toBe(503);
  expect(refused.body['code']).toBe('POOL_UNAVAILABLE');
  expect(refused.headers['retry-after']).toBeDefined();

  const result = (await stack.client.workflow.getHandle(operationId).result()) as PoolOperationResult;
  expect(result.outcome).toBe('completed');
  expect(result.replicas[`${stack.poolId}-r0`]).toMatch(/^drained/);

  const inFlightEvents = await inFlightReading.finished;
  expect(inFlightEvents.at(-1)?.event).toBe('end');
  expect(tokensOf(inFlightEvents).indices).toHaveLength(100);

  // The queued task is still waiting in Temporal: its engine activity is scheduled, never started.
  const queuedHandle = stack.client.workflow.getHandle(taskWorkflowId(String(queued['task_id'])));
  const description = await queuedHandle.describe();
  expect(description.status.name).toBe('RUNNING');
  expect(description.raw.pendingActivities?.[0]?.state).toBe(1 /* PENDING_ACTIVITY_STATE_SCHEDULED */);
  expect(stack.poolWorkers[0]?.status().state).toBe('drained');
  const drainedHealth = await health();
  expect(drainedHealth).toEqual(expect.objectContaining({ live: true, ready: false, draining: true }));

  // The operation is a workflow an operator finds by its id (and by Pool in the Web UI).
  const operation = await stack.client.workflow.getHandle(operationId).describe();
  expect(operation.type).toBe('drainPoolWorkflow');

  await resume();
  const queuedResult = (await queuedHandle.result()) as TaskResult;
  expect(queuedResult.state).toBe('completed');
  expect((await submit(taskRequest(stack, { max_tokens: 2 }))).status).toBe(202);
});

test('ORCH-2101: at the drain deadline a task still running is aborted with POOL_UNAVAILABLE on its stream', async () => {
  const body = taskRequest(stack, { max_tokens: 400 });
  expect((await submit(body)).status).toBe(202);
  const reading = readStream(`${stack.url}/v1/tasks/${String(body['task_id'])}/stream`);
  await waitFor(() => reading.events.some((event) => event.event === 'token'), 10_000, 'the task to run');

  const result = await operate(`/v1/pools/${stack.poolId}/drain`, { deadline_ms: 200 });
  expect(result.outcome).toBe('completed');
  expect(result.replicas[`${stack.poolId}-r0`]).toContain('1 aborted');

  const events = await reading.finished;
  const last = events.at(-1);
  expect(last?.event).toBe('error');
  expect(last?.data['code']).toBe('POOL_UNAVAILABLE');
  expect(tokensOf(events).indices.length).toBeLessThan(400);
  const failed = await stack.client.workflow.getHandle(taskWorkflowId(String(body['task_id']))).result().catch((error: unknown) => error);
  expect(failed).toBeInstanceOf(Error);
  // The engine stays up through a drain.
  expect(stack.poolWorkers[0]?.status()).toEqual(expect.objectContaining({ state: 'drained', live: true }));
  await resume();
});

test('ORCH-2101 design §5: a pool worker restarted while its pool is drained comes back drained, and resumes', async () => {
  const result = await operate(`/v1/pools/${stack.poolId}/drain`, { deadline_ms: 1_000 });
  expect(result.outcome).toBe('completed');
  const first = stack.poolWorkers[0];
  if (!first) throw new Error('no replica');
  await first.stop();

  const restarted = await stack.addPoolReplica(0);
  expect(restarted.status()).toEqual(expect.objectContaining({ state: 'drained', live: true, ready: false }));

  await resume();
  expect(restarted.status().state).toBe('ready');
  const body = taskRequest(stack, { max_tokens: 3 });
  expect((await submit(body)).status).toBe(202);
  const events = await readStream(`${stack.url}/v1/tasks/${String(body['task_id'])}/stream`).finished;
  expect(events.at(-1)?.event).toBe('end');
});

test('ORCH-2101 design §5: a pool worker stopped mid-drain ends the drain at once, comes back drained, and the interrupted task runs after resume', async () => {
  const body = taskRequest(stack, { max_tokens: 150 });
  expect((await submit(body)).status).toBe(202);
  const reading = readStream(`${stack.url}/v1/tasks/${String(body['task_id'])}/stream`);
  await waitFor(() => reading.events.some((event) => event.event === 'token'), 10_000, 'the task to run');
  const started = await post(`/v1/pools/${stack.poolId}/drain`, { deadline_ms: 600_000 });
  expect(started.status).toBe(202);
  const worker = stack.poolWorkers.at(-1);
  if (!worker) throw new Error('no replica');
  await waitFor(() => worker.status().state === 'draining', 10_000, 'the replica to drain');

  // The stop does not wait out the 10-minute deadline: the in-flight task gets the shutdown grace, then a retry.
  await worker.stop();
  const result = (await stack.client.workflow.getHandle(String(started.body['operation_id'])).result()) as PoolOperationResult;
  // The activity answers as the replica stops (its state then), not at the deadline.
  expect(result.outcome).toBe('completed');
  expect(result.replicas[`${stack.poolId}-r0`]).toMatch(/^(draining|stopped) /);

  const restarted = await stack.addPoolReplica(0);
  expect(restarted.status().state).toBe('drained');
  await resume();
  const events = await reading.finished;
  expect(events.at(-1)?.event).toBe('end');
  const outcome = (await stack.client.workflow.getHandle(taskWorkflowId(String(body['task_id']))).result()) as TaskResult;
  expect(outcome).toEqual(expect.objectContaining({ state: 'completed', attempt: 2, tokensOut: 150 }));
});

test('OC-CTRL-2040 ORCH-2101: drain and resume need the control scope, a known pool and a valid body', async () => {
  const dataOnly = { authorization: `Bearer ${stack.apiKeys.tenantAData}` };
  expect((await post(`/v1/pools/${stack.poolId}/drain`, { deadline_ms: 1_000 }, dataOnly)).status).toBe(403);
  expect((await post(`/v1/pools/${stack.poolId}/resume`, undefined, dataOnly)).status).toBe(403);
  const unknown = await post('/v1/pools/no-such-pool/drain', { deadline_ms: 1_000 });
  expect(unknown.status).toBe(404);
  expect(unknown.body['code']).toBe('INVALID_PARAMS');
  for (const bad of [{}, { deadline_ms: -1 }, { deadline_ms: 'soon' }, { deadline_ms: 1_000, extra: true }, { deadline_ms: 3_600_001 }]) {
    const response = await post(`/v1/pools/${stack.poolId}/drain`, bad);
    expect(response.status).toBe(400);
    expect(response.body['code']).toBe('INVALID_PARAMS');
  }
  expect(await poolMode()).toBe('serving');
});

describe('reload', () => {
  async function poolState(): Promise<{ mode: string; model_ref: string; previous_model_ref: string | null }> {
    return ((await health())['metrics'] as { pool_state: { mode: string; model_ref: string; previous_model_ref: string | null } }).pool_state;
  }

  async function reloadTo(modelRef: string): Promise<PoolOperationResult> {
    const started = await post(`/v1/pools/${stack.poolId}/reload`, { new_model_ref: modelRef });
    expect(started.status).toBe(202);
    expect(started.body).toEqual(expect.objectContaining({ kind: 'reload', mode: 'reloading', new_model_ref: modelRef }));
    operations.set('reload', String(started.body['operation_id']));
    const operation = stack.client.workflow.getHandle(String(started.body['operation_id']));
    expect((await operation.describe()).type).toBe('reloadPoolWorkflow');
    const result = (await operation.result()) as PoolOperationResult;
    await waitFor(async () => {
      const state = await poolState();
      return state.mode === 'serving' && state.model_ref === (result.outcome === 'completed' ? modelRef : state.model_ref);
    }, 10_000, 'the gateway to see the reload');
    return result;
  }

  async function runs(modelRef: string): Promise<void> {
    const body = taskRequest(stack, { model_ref: modelRef, max_tokens: 3 });
    expect((await submit(body)).status).toBe(202);
    const events = await readStream(`${stack.url}/v1/tasks/${String(body['task_id'])}/stream`).finished;
    expect(events.at(-1)?.event).toBe('end');
  }

  test('ORCH-2102 OC-CTRL-2003 ORCH-3031: a reload switches the pool to the new model in one step; the old ref is refused', async () => {
    const next = `${stack.model}-v2`;
    // One task in flight (it finishes on the old model within the reload's drain) and one queued behind it.
    const inFlight = taskRequest(stack, { max_tokens: 40 });
    const queued = taskRequest(stack, { max_tokens: 3 });
    expect((await submit(inFlight)).status).toBe(202);
    const inFlightReading = readStream(`${stack.url}/v1/tasks/${String(inFlight['task_id'])}/stream`);
    await waitFor(() => inFlightReading.events.some((event) => event.event === 'token'), 10_000, 'the first task to run');
    expect((await submit(queued)).status).toBe(202);
    const queuedReading = readStream(`${stack.url}/v1/tasks/${String(queued['task_id'])}/stream`);

    const result = await reloadTo(next);
    expect(result.outcome).toBe('completed');
    expect((await inFlightReading.finished).at(-1)?.event).toBe('end');
    // The queued task was for the old model: it never decodes on the new one.
    const queuedEnd = (await queuedReading.finished).at(-1);
    expect(queuedEnd?.event).toBe('error');
    expect(queuedEnd?.data['code']).toBe('MODEL_DEPRECATED');
    expect(result.replicas[`${stack.poolId}-r0`]).toContain(next);
    expect(await poolState()).toEqual(expect.objectContaining({ model_ref: next, previous_model_ref: stack.model }));
    expect(stack.poolWorkers.at(-1)?.status()).toEqual(expect.objectContaining({ state: 'ready', model_ref: next }));
    await runs(next);
    const old = await submit(taskRequest(stack, { model_ref: stack.model }));
    expect(old.status).toBe(400);
    expect(old.body['code']).toBe('INVALID_PARAMS');

    // ORCH-3033: the manual rollback is one action, a reload back to the previous ref.
    const back = await reloadTo(stack.model);
    expect(back.outcome).toBe('completed');
    await runs(stack.model);
    expect((await submit(taskRequest(stack, { model_ref: next }))).status).toBe(400);
  });

  test('ORCH-2102: a ref the pool cannot serve is refused with 400 before anything starts', async () => {
    for (const bad of [{ new_model_ref: 'llama-3-8b' }, { new_model_ref: stack.model }, {}, { new_model_ref: '' }, { new_model_ref: 'mock:x', extra: 1 }]) {
      const response = await post(`/v1/pools/${stack.poolId}/reload`, bad);
      expect(response.status).toBe(400);
      expect(response.body['code']).toBe('INVALID_PARAMS');
    }
    expect((await post(`/v1/pools/${stack.poolId}/reload`, { new_model_ref: 'mock:x' }, { authorization: `Bearer ${stack.apiKeys.tenantAData}` })).status).toBe(403);
    expect((await post('/v1/pools/nope/reload', { new_model_ref: 'mock:x' })).status).toBe(404);
  });
});

test('design §5: the operation workflows and the pool-state record replay without non-determinism; ORCH_RECORD_HISTORIES=1 saves them as fixtures', async () => {
  const bundle = readFileSync(String(process.env['ORCH_TEST_WORKFLOW_BUNDLE']), 'utf8');
  expect([...operations.keys()].sort()).toEqual(['drain', 'reload', 'resume']);
  const histories: [string, string][] = [...[...operations.entries()].map(([kind, id]): [string, string] => [`pool-${kind}`, id]), ['pool-state', poolStateWorkflowId(stack.poolId)]];
  for (const [name, workflowId] of histories) {
    const history = await stack.client.workflow.getHandle(workflowId).fetchHistory();
    await Worker.runReplayHistory({ workflowBundle: { code: bundle } }, history, name);
    if (process.env['ORCH_RECORD_HISTORIES'] === '1' && name !== 'pool-state') {
      writeFileSync(
        join(__dirname, '..', 'fixtures', 'histories', `${name}.json`),
        JSON.stringify(temporal.api.history.v1.History.toObject(temporal.api.history.v1.History.fromObject(history), { longs: String, enums: String, bytes: String }), null, 1),
      );
    }
  }
});
