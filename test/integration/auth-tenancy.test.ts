import { randomUUID } from 'node:crypto';
import { request } from 'undici';
import { mintApiKey } from '../../api/auth/api-keys';
import { taskWorkflowId } from '../../core/ids';
import { SearchAttr } from '../../core/search-attributes';
import { readStream } from '../support/sse-client';
import { startTestStack, taskRequest, TEST_API_KEYS, type TestStack } from '../support/stack';

let stack: TestStack;
/** Every response body and header the test saw, searched for keys at the end (OC-CTRL-2041). */
const seenOutput: string[] = [];
const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

beforeAll(async () => {
  stack = await startTestStack({ slots: 2 });
});
afterAll(async () => {
  await stack.stop();
});

async function call(method: 'GET' | 'POST', path: string, headers: Record<string, string>, body?: unknown) {
  const response = await request(`${stack.url}${path}`, {
    method,
    headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.body.text();
  seenOutput.push(JSON.stringify(response.headers), text);
  return { status: response.statusCode, headers: response.headers, body: text.startsWith('{') ? (JSON.parse(text) as Record<string, unknown>) : text };
}

describe('ORCH-3035 OC-CTRL-2040: API keys gate both planes', () => {
  test('ORCH-3035: no key is 401 UNAUTHENTICATED with a typed envelope and WWW-Authenticate, on the data and the control plane', async () => {
    const data = await call('POST', '/v1/tasks', {}, taskRequest(stack));
    expect(data.status).toBe(401);
    expect(data.body).toEqual(expect.objectContaining({ code: 'UNAUTHENTICATED', retriable: false }));
    expect(data.headers['www-authenticate']).toMatch(/^Bearer/);
    const control = await call('GET', `/v1/pools/${stack.poolId}/health`, {});
    expect(control.status).toBe(401);
    expect(control.body).toEqual(expect.objectContaining({ code: 'UNAUTHENTICATED' }));
  });

  test('ORCH-3035: an unknown key is 401, a known key without the plane\'s scope is 403 FORBIDDEN', async () => {
    expect((await call('POST', '/v1/tasks', bearer(mintApiKey()), taskRequest(stack))).status).toBe(401);
    const forbidden = await call('GET', `/v1/pools/${stack.poolId}/health`, bearer(TEST_API_KEYS.tenantAData));
    expect(forbidden.status).toBe(403);
    expect(forbidden.body).toEqual(expect.objectContaining({ code: 'FORBIDDEN', retriable: false }));
    // The same data-only key is enough for the data plane.
    expect((await call('POST', '/v1/tasks', bearer(TEST_API_KEYS.tenantAData), taskRequest(stack, { max_tokens: 1 }))).status).toBe(202);
  });

  test('ORCH-3035: X-API-Key works as well as Authorization: Bearer; the API description and /metrics need no key', async () => {
    expect((await call('GET', `/v1/pools/${stack.poolId}/health`, { 'x-api-key': TEST_API_KEYS.tenantA })).status).toBe(200);
    expect((await call('GET', '/v1/openapi.json', {})).status).toBe(200);
    expect((await call('GET', '/metrics', {})).status).toBe(200);
  });

  test('ORCH-3035: with auth on, the key\'s tenant is the client identity and X-Client-Id cannot override it', async () => {
    const body = taskRequest(stack, { max_tokens: 2 });
    expect((await call('POST', '/v1/tasks', { ...stack.authHeaders, 'x-client-id': 'someone-else' }, body)).status).toBe(202);
    await readStream(`${stack.url}/v1/tasks/${String(body['task_id'])}/stream`).finished;
    const description = await stack.client.workflow.getHandle(taskWorkflowId(String(body['task_id']))).describe();
    expect(description.typedSearchAttributes.get(SearchAttr.clientId)).toBe('tenant-a');
  });
});

describe('ORCH-3035: a tenant sees, streams and cancels only its own tasks', () => {
  test('ORCH-3035: another tenant gets 404 on stream and cancel (as for a task that does not exist), and cannot take over the task_id', async () => {
    const body = taskRequest(stack, { max_tokens: 4 });
    const taskId = String(body['task_id']);
    expect((await call('POST', '/v1/tasks', stack.authHeaders, body)).status).toBe(202);

    const otherStream = await call('GET', `/v1/tasks/${taskId}/stream`, bearer(TEST_API_KEYS.tenantB));
    expect(otherStream.status).toBe(404);
    const otherCancel = await call('POST', `/v1/tasks/${taskId}/cancel`, bearer(TEST_API_KEYS.tenantB));
    expect(otherCancel.status).toBe(404);
    const unknown = await call('POST', `/v1/tasks/${randomUUID()}/cancel`, bearer(TEST_API_KEYS.tenantB));
    expect(otherCancel.body).toEqual({ ...(unknown.body as Record<string, unknown>), message: `no task with id ${taskId}` });
    // The same task_id and body from tenant-b is a different request, not a way to attach to tenant-a's task.
    expect((await call('POST', '/v1/tasks', bearer(TEST_API_KEYS.tenantB), body)).status).toBe(400);

    const events = await readStream(`${stack.url}/v1/tasks/${taskId}/stream`).finished;
    expect(events.at(-1)?.event).toBe('end');
  });

  test('ORCH-3035: on a gateway that holds no live copy, ownership comes from the workflow (ClientId)', async () => {
    const body = taskRequest(stack, { max_tokens: 2 });
    const taskId = String(body['task_id']);
    expect((await call('POST', '/v1/tasks', stack.authHeaders, body)).status).toBe(202);
    await readStream(`${stack.url}/v1/tasks/${taskId}/stream`).finished;
    const other = await stack.addGateway();
    const asOther = await request(`${other.url}/v1/tasks/${taskId}/stream`, { headers: bearer(TEST_API_KEYS.tenantB) });
    seenOutput.push(await asOther.body.text());
    expect(asOther.statusCode).toBe(404);
    const asOwner = await readStream(`${other.url}/v1/tasks/${taskId}/stream`).finished;
    expect(asOwner.at(-1)?.event).toBe('end');
  });
});

test('OC-CTRL-2041: no API key appears in any log line, response or metric of the run', async () => {
  seenOutput.push((await call('GET', '/metrics', {})).body as string);
  const everything = `${stack.logs.text()}\n${seenOutput.join('\n')}`;
  // The run did log and answer (so an empty capture cannot pass), including the requests with keys.
  expect(stack.logs.lines().length).toBeGreaterThan(5);
  expect(seenOutput.length).toBeGreaterThan(10);
  for (const key of Object.values(TEST_API_KEYS)) {
    expect(everything.includes(key)).toBe(false);
    // Nor a recognisable part of one (a log that truncates still leaks).
    expect(everything.includes(key.slice(4, 24))).toBe(false);
  }
});

test('ORCH-3035: with auth disabled by config, requests need no key and X-Client-Id names the client', async () => {
  const open = await startTestStack({ custom: { auth: { mode: 'disabled' } } });
  try {
    const body = taskRequest(open, { max_tokens: 1 });
    const response = await request(`${open.url}/v1/tasks`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-client-id': 'team-x' }, body: JSON.stringify(body) });
    await response.body.dump();
    expect(response.statusCode).toBe(202);
    // Without keys there is no ownership to enforce: a reader with no identity gets the stream.
    await readStream(`${open.url}/v1/tasks/${String(body['task_id'])}/stream`, { headers: {} }).finished;
    const description = await open.client.workflow.getHandle(taskWorkflowId(String(body['task_id']))).describe();
    expect(description.typedSearchAttributes.get(SearchAttr.clientId)).toBe('team-x');
  } finally {
    await open.stop();
  }
});
