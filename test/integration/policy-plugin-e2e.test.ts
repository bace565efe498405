import { request } from 'undici';
import { buildExamplePlugin } from '../../policy/tools/build-plugin';
import { readStream, tokensOf } from '../support/sse-client';
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
