import pino from 'pino';
import { request } from 'undici';
import { AdmissionController } from '../../api/admission/admission-controller';
import { PoolLedger } from '../../api/admission/pool-ledger';
import { RateLimiter } from '../../api/admission/rate-limiter';
import type { TemporalBacklog } from '../../api/admission/temporal-backlog';
import { placementCandidates } from '../../api/placement/placement-candidates';
import { TaskRequestSchema } from '../../core/task-request';
import { createPolicyHost, type AdmitSnapshot, type PolicyHost } from '../../policy';
import { buildExamplePlugin } from '../../policy/tools/build-plugin';
import { readStream, tokensOf, waitFor } from '../support/sse-client';
import { startTestStack, taskRequest, type TestStack } from '../support/stack';

let withPlugin: TestStack;
let withBuiltin: TestStack;

beforeAll(async () => {
  const path = await buildExamplePlugin('max-tokens-cap');
  withPlugin = await startTestStack({ ctx: 8192, policyPlugin: { id: 'max-tokens-cap', version: '0.1.0', path } });
  withBuiltin = await startTestStack({ ctx: 8192 });
}, 120_000);
afterAll(async () => {
  await withPlugin.stop();
  await withBuiltin.stop();
});

async function submit(stack: TestStack, body: Record<string, unknown>) {
  const response = await request(`${stack.url}/v1/tasks`, { method: 'POST', headers: { 'content-type': 'application/json', ...stack.authHeaders }, body: JSON.stringify(body) });
  return { status: response.statusCode, headers: response.headers, body: (await response.body.json()) as Record<string, unknown> };
}

test('ORCH-3048 OC-POLICY-4001: the example WASI plugin decides real admission — it refuses what the built-in policy accepts', async () => {
  const large = { ctx: 4096, max_tokens: 3000 };
  const refused = await submit(withPlugin, taskRequest(withPlugin, large));
  expect(refused.status).toBe(429);
  expect(refused.body).toEqual(expect.objectContaining({ code: 'ADMISSION_REJECT', policy_label: 'max-tokens-over-2048', retry_after_ms: 1000 }));
  expect(refused.headers['x-backoff-ms']).toBe('1000');

  const accepted = await submit(withBuiltin, taskRequest(withBuiltin, { ...large, max_tokens: 3000 }));
  expect(accepted.status).toBe(202);
  await request(`${withBuiltin.url}/v1/tasks/${String(accepted.body['task_id'])}/cancel`, { method: 'POST', headers: withBuiltin.authHeaders }).then((response) => response.body.dump());
});

test('OC-POLICY-4020: a task the plugin admits runs end to end, and the admission line names the plugin that decided', async () => {
  const body = taskRequest(withPlugin, { max_tokens: 6 });
  expect((await submit(withPlugin, body)).status).toBe(202);
  const events = await readStream(`${withPlugin.url}/v1/tasks/${String(body['task_id'])}/stream`).finished;
  expect(tokensOf(events).indices).toEqual([0, 1, 2, 3, 4, 5]);
  const admitted = withPlugin.logs.lines().find((line) => line['msg'] === 'task admitted' && line['job_id'] === body['task_id']);
  expect(admitted?.['decided_by']).toBe('plugin:max-tokens-cap');
  const decisionLog = withPlugin.logs.lines().find((line) => line['plugin_id'] === 'max-tokens-cap' && line['task_id'] === body['task_id']);
  expect(decisionLog).toEqual(expect.objectContaining({ plugin_version: '0.1.0', latency_ms: expect.any(Number) }));
});

test('OC-POLICY-4010: a plugin that cannot load fails gateway start-up with a clear message', async () => {
  await expect(startTestStack({ policyPlugin: { id: 'missing', version: '1', path: '/nonexistent/plugin.wasm' } })).rejects.toThrow(/missing.*plugin\.wasm|plugin\.wasm.*missing/s);
});

test('issue 13: under load, a policy\'s snapshot carries each replica\'s real KV use and in-flight tokens — read from its engine\'s slots, published in its status record, seen through the gateway\'s replica directory', async () => {
  const stack = withBuiltin;
  // ~6 s of decoding on the mock (2 ms a token): long enough to be seen mid-flight.
  const body = taskRequest(stack, { max_tokens: 3000, ctx: 4096, deadline_ms: 60_000 });
  expect((await submit(stack, body)).status).toBe(202);
  try {
    // The replica reads its engine every second and publishes at most once a second; the directory re-reads every second.
    await waitFor(
      async () => {
        await stack.gateway.replicas.refresh();
        return stack.gateway.replicas.replicas(stack.poolId).some((replica) => replica.ready && (replica.inflight_tokens ?? 0) > 0);
      },
      20_000,
      'a published in-flight token count',
    );
    // The admission snapshot a policy gets, built as the gateway builds it, over the gateway's own directory.
    const builtin = await createPolicyHost(undefined, pino({ level: 'silent' }), { validateSnapshots: true });
    const seen: AdmitSnapshot[] = [];
    const recording: PolicyHost = { ...builtin, active: builtin.active, admit: (snapshot) => (seen.push(snapshot), builtin.admit(snapshot)) };
    const pool = stack.config.pools[0];
    if (!pool) throw new Error('no pool');
    const controller = new AdmissionController({
      ledger: new PoolLedger(),
      backlog: { view: () => undefined } as unknown as TemporalBacklog,
      limiter: new RateLimiter(),
      policies: new Map([[pool.id, recording]]),
      slotsOf: () => 4,
      logger: pino({ level: 'silent' }),
      replicaRecords: (poolId) => stack.gateway.replicas.replicas(poolId),
    });
    await controller.admit(pool, TaskRequestSchema.parse(taskRequest(stack, { max_tokens: 4 })), 'tenant-a');
    const [replica] = seen[0]?.replicas ?? [];
    // 'Write a haiku about queues.' is 6 prompt tokens on the mock; more than that means generated tokens are counted too.
    expect(replica?.inflightTokens).toBeGreaterThan(6);
    expect(replica?.kvUsedPermille).toBeGreaterThan(0);
    expect(replica?.slotsBusy).toBe(1);
    // Placement policies get the same figures.
    expect(placementCandidates(stack.gateway.replicas.replicas(stack.poolId))?.candidates[0]).toMatchObject({ inflightTokens: expect.any(Number), kvUsedPermille: expect.any(Number) });
    expect(placementCandidates(stack.gateway.replicas.replicas(stack.poolId))?.candidates[0]?.inflightTokens).toBeGreaterThan(6);
    await builtin.close();
  } finally {
    await request(`${stack.url}/v1/tasks/${String(body['task_id'])}/cancel`, { method: 'POST', headers: stack.authHeaders }).then((response) => response.body.dump());
  }
}, 60_000);
