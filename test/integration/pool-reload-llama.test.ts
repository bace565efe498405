import { request } from 'undici';
import type { PoolOperationResult } from '../../core/pool-state';
import { cpuReplicaOptions, llamaServerPool, poolHealth, postTask, PROVISION_TIMEOUT_MS, provisionSyntheticEngine, reloadTestCatalog, SECOND_MODEL_REF, SYNTHETIC_MODEL_REF, UNTRUSTED_MODEL_REF } from '../support/llama-server-pool';
import { parsePrometheusText } from '../support/prometheus-text';
import { readStream, waitFor } from '../support/sse-client';
import { startTestStack, taskRequest, type TestStack } from '../support/stack';


let stack: TestStack;

beforeAll(async () => {
  await provisionSyntheticEngine();
  const { first, models } = await reloadTestCatalog();
  const pool = llamaServerPool({}, first);
  stack = await startTestStack({ ctx: 512, replicaOptions: cpuReplicaOptions, custom: { ...pool, models } });
}, PROVISION_TIMEOUT_MS);

afterAll(async () => {
  await stack.stop();
});

async function reload(modelRef: string): Promise<PoolOperationResult> {
  const response = await request(`${stack.url}/v1/pools/${stack.poolId}/reload`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...stack.authHeaders },
    body: JSON.stringify({ new_model_ref: modelRef }),
  });
  const body = (await response.body.json()) as Record<string, unknown>;
  expect(response.statusCode).toBe(202);
  const result = (await stack.client.workflow.getHandle(String(body['operation_id'])).result()) as PoolOperationResult;
  await waitFor(async () => {
    const health = await poolHealth(stack.url, stack.poolId);
    return (health.metrics['pool_state'] as { mode: string }).mode === 'serving';
  }, 10_000, 'the gateway to see the pool serving');
  return result;
}

async function runs(modelRef: string): Promise<void> {
  const body = taskRequest(stack, { model_ref: modelRef, max_tokens: 4, ctx: 256 });
  const submitted = await postTask(stack.url, body);
  expect(submitted.statusCode).toBe(202);
  const events = await readStream(`${stack.url}/v1/tasks/${String(body['task_id'])}/stream`).finished;
  expect(events.at(-1)?.event).toBe('end');
}

test('ORCH-2102 ORCH-3031 ORCH-3033: a reload whose model fails verification rolls back; the pool serves the old model and health says why', async () => {
  const result = await reload(UNTRUSTED_MODEL_REF);
  expect(result.outcome).toBe('rolled_back');
  expect(result.cause).toContain('UNTRUSTED_ARTIFACT');
  const replica = stack.poolWorkers[0]?.status();
  expect(replica).toEqual(expect.objectContaining({ state: 'ready', model_ref: SYNTHETIC_MODEL_REF }));
  expect(replica?.last_error).toEqual(expect.objectContaining({ code: 'UNTRUSTED_ARTIFACT', kind: 'untrusted_artifact' }));
  const health = await poolHealth(stack.url, stack.poolId);
  expect(String(health['last_error'])).toMatch(/^reload rolled_back .*UNTRUSTED_ARTIFACT/);
  expect(health.metrics['pool_state']).toEqual(expect.objectContaining({ model_ref: SYNTHETIC_MODEL_REF }));
  await runs(SYNTHETIC_MODEL_REF);

  // OC-POOL-3030 ORCH-3028: the launches by outcome, on a live scrape of the gateway.
  const replicaId = `${stack.poolId}-r0`;
  const launches = async (outcome: string): Promise<number> => {
    const text = await (await request(`${stack.url}/metrics`)).body.text();
    const series = parsePrometheusText(text).samples.find((sample) => sample.name === 'replica_engine_launches' && sample.labels['replica_id'] === replicaId && sample.labels['outcome'] === outcome);
    return series?.value ?? 0;
  };
  // The first start and the start back on the old model were ready; the refused one was untrusted.
  await waitFor(async () => (await launches('untrusted_artifact')) === 1 && (await launches('ready')) === 2, 10_000, 'the launches on /metrics');
  expect(await launches('self_test_failed')).toBe(0);
});

test('ORCH-2102 OC-CTRL-2003: a real llama-server reload to a second model: new digest, new ref served, old refused', async () => {
  const before = stack.poolWorkers[0]?.status();
  const result = await reload(SECOND_MODEL_REF);
  expect(result.outcome).toBe('completed');
  const after = stack.poolWorkers[0]?.status();
  expect(after).toEqual(expect.objectContaining({ state: 'ready', model_ref: SECOND_MODEL_REF }));
  expect(after?.model_digest).not.toBe(before?.model_digest);
  expect(after?.replica_set_key).toContain(SECOND_MODEL_REF);
  await runs(SECOND_MODEL_REF);
  expect((await postTask(stack.url, taskRequest(stack, { model_ref: SYNTHETIC_MODEL_REF, ctx: 256 }))).statusCode).toBe(400);
});
