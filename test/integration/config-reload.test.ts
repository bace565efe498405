import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { hashApiKey, mintApiKey } from '../../api/auth/api-keys';
import { startGateway, type RunningGateway } from '../../api/gateway';
import { ConfigChangeSchema } from '../../api/openapi/api-schemas';
import { loadConfigFile } from '../../core/config-file';
import { startTestStack, taskRequest, type TestStack } from '../support/stack';

const operatorKey = mintApiKey();
const laterKey = mintApiKey();
const dir = mkdtempSync(join(tmpdir(), 'orch-config-reload-'));
const path = join(dir, 'config.json');
let stack: TestStack;
let gateway: RunningGateway;

/** The gateway's config file: JSON is YAML. The pool is the stack's, so tasks reach its replica. */
function writeConfig(options: { capacity: number; keys?: readonly string[]; replicas?: number }): void {
  const pool = stack.config.pools[0];
  if (!pool) throw new Error('no pool');
  const keys = [operatorKey, ...(options.keys ?? [])].map((key, index) => ({ id: `k${index}`, tenant: 'ops', scopes: ['data', 'control'], sha256: hashApiKey(key) }));
  writeFileSync(
    path,
    JSON.stringify({
      pools: [{ id: pool.id, engine: 'llamacpp', model: pool.model, devices: [0], replicas: options.replicas ?? 1, engine_runtime: { kind: 'mock', slots: 4 }, queue: { capacity: options.capacity, full_policy: 'reject' } }],
      auth: { keys },
      streams: { replay_buffer_frames: 4096, linger_ms: 60_000 },
    }),
  );
}

beforeAll(async () => {
  stack = await startTestStack();
  writeConfig({ capacity: 0 });
  gateway = await startGateway({ config: loadConfigFile(path).config, configPath: path, client: stack.client, logger: stack.gateway.app.log as never, internalToken: stack.internalToken, listen: { host: '127.0.0.1', port: 0 } });
});
afterAll(async () => {
  await gateway.close();
  await stack.stop();
});

async function call(method: 'GET' | 'POST', route: string, key: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await request(`${gateway.url}${route}`, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.body.text();
  return { status: response.statusCode, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

test('ORCH-3031 ORCH-3033: a reload swaps queue capacity and API keys in one step; a restart-only change is refused by name; revert restores the previous config', async () => {
  expect((await call('POST', '/v1/tasks', operatorKey, taskRequest(stack))).body['code']).toBe('ADMISSION_REJECT');
  expect((await call('GET', '/v1/replicasets', laterKey)).status).toBe(401);

  writeConfig({ capacity: 16, keys: [laterKey] });
  const reloaded = await call('POST', '/v1/config/reload', operatorKey);
  expect(reloaded.status).toBe(200);
  expect(ConfigChangeSchema.parse(reloaded.body)).toEqual({ changed: ['pools[0].queue', 'auth.keys'], revertible: true });
  expect((await call('POST', '/v1/tasks', operatorKey, taskRequest(stack, { max_tokens: 2 }))).status).toBe(202);
  expect((await call('GET', '/v1/replicasets', laterKey)).status).toBe(200);

  writeConfig({ capacity: 16, keys: [laterKey], replicas: 2 });
  const refused = await call('POST', '/v1/config/reload', operatorKey);
  expect(refused.status).toBe(400);
  expect(refused.body['code']).toBe('INVALID_PARAMS');
  expect(String(refused.body['message'])).toContain('pools[0].replicas');
  writeFileSync(path, '{ "pools": [] }');
  expect((await call('POST', '/v1/config/reload', operatorKey)).status).toBe(400);
  // Nothing of the refused files was applied.
  expect((await call('GET', '/v1/replicasets', laterKey)).status).toBe(200);

  const reverted = await call('POST', '/v1/config/revert', operatorKey);
  expect(reverted.status).toBe(200);
  expect((await call('GET', '/v1/replicasets', laterKey)).status).toBe(401);
  expect((await call('POST', '/v1/tasks', operatorKey, taskRequest(stack))).body['code']).toBe('ADMISSION_REJECT');
});

test('OC-CTRL-2040 ORCH-3031: config reload needs the control scope; the stack gateway, started without a file, has nothing to reload', async () => {
  const dataOnly = await request(`${stack.url}/v1/config/reload`, { method: 'POST', headers: { authorization: `Bearer ${stack.apiKeys.tenantAData}` } });
  expect(dataOnly.statusCode).toBe(403);
  await dataOnly.body.dump();
  const noFile = await request(`${stack.url}/v1/config/reload`, { method: 'POST', headers: stack.authHeaders });
  expect(noFile.statusCode).toBe(400);
  await noFile.body.dump();
});
