import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { temporal } from '@temporalio/proto';
import { Worker } from '@temporalio/worker';
import { request } from 'undici';
import { RELOAD_PROGRESS_QUERY } from '../../core/pool-state';
import type { PoolOperationRecord, PoolOperationResult, ReloadProgress } from '../../core/pool-state';
import type { ReplicaState } from '../../core/replica-status';
import { cpuReplicaOptions, llamaServerPool, poolHealth, postTask, PROVISION_TIMEOUT_MS, provisionSyntheticEngine, reloadTestCatalog, SECOND_MODEL_REF, SYNTHETIC_MODEL_REF, UNTRUSTED_MODEL_REF } from '../support/llama-server-pool';
import { readStream, waitFor } from '../support/sse-client';
import { startTestStack, taskRequest, waitForReadyReplicas, type TestStack } from '../support/stack';

/** Long enough to look at the pool while the canary is watched; the assertions wait on phases, not on it. */
const OBSERVE_MS = 5_000;

let stack: TestStack;
const reloadIds = new Map<string, string>();

beforeAll(async () => {
  await provisionSyntheticEngine();
  const { first, models } = await reloadTestCatalog();
  // Two real llama-server replicas of the synthetic model (one slot, one thread each: the test machine has 2 cores).
  const pool = llamaServerPool({ threads: 1 }, first);
  stack = await startTestStack({ ctx: 512, replicas: 2, inProcessReplicas: 2, replicaOptions: cpuReplicaOptions, custom: { ...pool, models } });
  await waitForReadyReplicas(stack, 2);
}, PROVISION_TIMEOUT_MS);

afterAll(async () => {
  await stack?.stop();
});

const replicaId = (index: number): string => `${stack.poolId}-r${index}`;

function replica(index: number): TestStack['poolWorkers'][number] {
  const found = stack.poolWorkers.find((candidate) => candidate.replicaId === replicaId(index));
  if (!found) throw new Error(`no replica ${index}`);
  return found;
}

async function startReload(body: Record<string, unknown>): Promise<string> {
  const response = await request(`${stack.url}/v1/pools/${stack.poolId}/reload`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...stack.authHeaders },
    body: JSON.stringify(body),
  });
  const accepted = (await response.body.json()) as Record<string, unknown>;
  expect(response.statusCode).toBe(202);
  // The canary is the default on a pool of two; the pool keeps admitting while it runs.
  expect(accepted).toEqual(expect.objectContaining({ kind: 'reload', mode: 'serving', strategy: 'canary' }));
  return String(accepted['operation_id']);
}

async function finished(operationId: string): Promise<{ result: PoolOperationResult; record: PoolOperationRecord }> {
  const result = (await stack.client.workflow.getHandle(operationId).result()) as PoolOperationResult;
  let record: PoolOperationRecord | undefined;
  await waitFor(async () => {
    const state = (await poolHealth(stack.url, stack.poolId)).metrics['pool_state'] as { mode: string; last_operation: PoolOperationRecord | null };
    record = state.last_operation?.id === operationId && state.mode === 'serving' ? state.last_operation : undefined;
    return record !== undefined;
  }, 10_000, 'the gateway to see the reload end');
  if (!record) throw new Error('no record');
  return { result, record };
}

/** Submits a task for `modelRef` and reads its stream to the end; returns the replica that decoded it. */
async function served(modelRef: string): Promise<string> {
  const body = taskRequest(stack, { model_ref: modelRef, max_tokens: 4, ctx: 256 });
  const submitted = await postTask(stack.url, body);
  expect(submitted.statusCode).toBe(202);
  const events = await readStream(`${stack.url}/v1/tasks/${String(body['task_id'])}/stream`).finished;
  expect(events.at(-1)?.event).toBe('end');
  const dispatched = events.find((event) => event.event === 'metrics' && event.data['phase'] === 'dispatched');
  return String(dispatched?.data['replica_id']);
}

/** The states a replica goes through while `during` runs (sampled on every turn of the event loop's timers). */
async function statesOf<T>(index: number, during: Promise<T>): Promise<{ value: T; states: Set<ReplicaState> }> {
  const states = new Set<ReplicaState>([replica(index).status().state]);
  const sampler = setInterval(() => states.add(replica(index).status().state), 5);
  try {
    return { value: await during, states };
  } finally {
    clearInterval(sampler);
    states.add(replica(index).status().state);
  }
}

test('ORCH-3033 ORCH-2102 OC-CTRL-2003: a canary whose model fails verification is the only replica rolled back; the other serves the old model throughout', async () => {
  const otherLaunches = replica(1).status().launch_outcomes?.ready;
  const operationId = await startReload({ new_model_ref: UNTRUSTED_MODEL_REF });
  reloadIds.set('pool-reload-canary-rolled-back', operationId);
  const watched = await statesOf(1, (async () => {
    // The canary (r0) refused the model and is back on the old one; meanwhile a task is admitted and served.
    await replica(0).waitForStatus((status) => status.state === 'unready' && status.last_error?.code === 'UNTRUSTED_ARTIFACT', 60_000);
    const decodedBy = await served(SYNTHETIC_MODEL_REF);
    return { decodedBy, ...(await finished(operationId)) };
  })());
  const { decodedBy, result, record } = watched.value;

  expect(decodedBy).toBe(replicaId(1));
  expect(result.outcome).toBe('rolled_back');
  expect(result.cause).toMatch(new RegExp(`^canary ${replicaId(0)}: UNTRUSTED_ARTIFACT`));
  expect(record).toEqual(expect.objectContaining({ outcome: 'rolled_back', cause: result.cause }));
  // The operation's steps: the canary tried the new model, then went back; r1 appears in none of them.
  expect(record.reload?.steps.map((step) => [step.phase, step.replica_ids, step.model_ref])).toEqual([
    ['canary', [replicaId(0)], UNTRUSTED_MODEL_REF],
    ['rolling_back', [replicaId(0)], SYNTHETIC_MODEL_REF],
  ]);
  // r1 never left Ready and its engine never restarted.
  expect([...watched.states]).toEqual(['ready']);
  expect(replica(1).status()).toEqual(expect.objectContaining({ state: 'ready', model_ref: SYNTHETIC_MODEL_REF }));
  expect(replica(1).status().launch_outcomes?.ready).toBe(otherLaunches);
  await replica(0).waitForStatus((status) => status.state === 'ready', 30_000);
  expect(replica(0).status()).toEqual(expect.objectContaining({ model_ref: SYNTHETIC_MODEL_REF }));
  const health = await poolHealth(stack.url, stack.poolId);
  expect(String(health['last_error'])).toMatch(/^reload rolled_back .*canary .*UNTRUSTED_ARTIFACT/);
  expect(health.metrics['pool_state']).toEqual(expect.objectContaining({ model_ref: SYNTHETIC_MODEL_REF }));
}, 180_000);

test('ORCH-3033 ORCH-2102: a canary reload switches one replica first, watches it while the other serves, then the rest; health says which replica runs which model', async () => {
  const operationId = await startReload({ new_model_ref: SECOND_MODEL_REF, canary_observe_ms: OBSERVE_MS });
  reloadIds.set('pool-reload-canary', operationId);

  // During the observation: the canary runs the new model (drained), r1 the old one (serving), the pool admits.
  let during: Record<string, unknown>[] = [];
  await waitFor(async () => {
    const health = await poolHealth(stack.url, stack.poolId);
    const state = health.metrics['pool_state'] as { mode: string; operation: { reload?: ReloadProgress } | null };
    during = health.metrics.replicas;
    return state.operation?.reload?.phase === 'canary_observing' && during.some((entry) => entry['replica_id'] === replicaId(0) && entry['model_ref'] === SECOND_MODEL_REF);
  }, 60_000, 'the canary under observation');
  expect(during).toEqual([
    expect.objectContaining({ replica_id: replicaId(0), state: 'drained', model_ref: SECOND_MODEL_REF }),
    expect.objectContaining({ replica_id: replicaId(1), state: 'ready', model_ref: SYNTHETIC_MODEL_REF }),
  ]);
  expect(await served(SYNTHETIC_MODEL_REF)).toBe(replicaId(1));
  // The Web UI's Queries tab reads the same progress from the operation's workflow.
  const queried = await stack.client.workflow.getHandle(operationId).query<ReloadProgress>(RELOAD_PROGRESS_QUERY);
  expect(queried).toEqual(expect.objectContaining({ strategy: 'canary', canary_replica_id: replicaId(0), canary_observe_ms: OBSERVE_MS }));

  const { result, record } = await finished(operationId);
  expect(result.outcome).toBe('completed');
  // The order is the operation's own record: canary first, watched, then the rest, then one switch for both.
  expect(record.reload?.steps.map((step) => [step.phase, step.replica_ids, step.model_ref])).toEqual([
    ['canary', [replicaId(0)], SECOND_MODEL_REF],
    ['canary_observing', [replicaId(0)], SECOND_MODEL_REF],
    ['rolling_out', [replicaId(1)], SECOND_MODEL_REF],
    ['switched', [replicaId(0), replicaId(1)], SECOND_MODEL_REF],
  ]);
  const at = record.reload?.steps.map((step) => step.at) ?? [];
  expect([...at].sort()).toEqual(at);
  for (const index of [0, 1]) await replica(index).waitForStatus((status) => status.state === 'ready' && status.model_ref === SECOND_MODEL_REF, 30_000);
  await served(SECOND_MODEL_REF);
  expect((await postTask(stack.url, taskRequest(stack, { model_ref: SYNTHETIC_MODEL_REF, ctx: 256 }))).statusCode).toBe(400);
}, 180_000);

test('design §5: the canary reloads replay without non-determinism; ORCH_RECORD_HISTORIES=1 saves them as fixtures', async () => {
  const bundle = readFileSync(String(process.env['ORCH_TEST_WORKFLOW_BUNDLE']), 'utf8');
  expect([...reloadIds.keys()].sort()).toEqual(['pool-reload-canary', 'pool-reload-canary-rolled-back']);
  for (const [name, workflowId] of reloadIds) {
    const history = await stack.client.workflow.getHandle(workflowId).fetchHistory();
    await Worker.runReplayHistory({ workflowBundle: { code: bundle } }, history, name);
    if (process.env['ORCH_RECORD_HISTORIES'] === '1') {
      writeFileSync(
        join(__dirname, '..', 'fixtures', 'histories', `${name}.json`),
        JSON.stringify(temporal.api.history.v1.History.toObject(temporal.api.history.v1.History.fromObject(history), { longs: String, enums: String, bytes: String }), null, 1),
      );
    }
  }
});
