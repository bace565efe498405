import { randomUUID } from 'node:crypto';
import { request } from 'undici';
import type { z } from 'zod';
import { AdmissionResponseSchema, ErrorEnvelopeSchema, PoolHealthSchema } from '../../api/openapi/api-schemas';
import { buildOpenApiDocument } from '../../api/openapi/openapi-document';
import { ModelListSchema, OpenAiErrorSchema } from '../../api/openapi/openai-schemas';
import { readStream } from '../support/sse-client';
import { startTestStack, taskRequest, type TestStack } from '../support/stack';

type Operations = Record<string, Record<string, { responses: Record<string, unknown> }>>;
const document = buildOpenApiDocument() as { paths: Operations };

let stack: TestStack;
beforeAll(async () => {
  stack = await startTestStack({ priorities: [{ name: 'batch', queue_capacity: 0 }] });
});
afterAll(async () => {
  await stack.stop();
});

/** The document's path template for a concrete URL, e.g. /v1/tasks/{id}/cancel. */
function templateOf(path: string): string | undefined {
  return Object.keys(document.paths).find((template) => new RegExp(`^${template.replace(/\{[^}]+\}/g, '[^/]+')}$`).test(path));
}

/** Calls the API and checks the answer against the document: the status is declared, the body has its schema. */
async function expectConforming(method: 'GET' | 'POST', path: string, options: { body?: unknown; headers?: Record<string, string> } = {}) {
  const response = await request(`${stack.url}${path}`, {
    method,
    headers: { ...(options.body === undefined ? {} : { 'content-type': 'application/json' }), ...(options.headers ?? stack.authHeaders) },
    ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
  });
  const text = await response.body.text();
  const template = templateOf(path);
  const declared = template ? Object.keys(document.paths[template]?.[method.toLowerCase()]?.responses ?? {}) : [];
  expect({ method, path: template ?? path, status: response.statusCode, declared: declared.includes(String(response.statusCode)) }).toEqual({
    method,
    path: template ?? path,
    status: response.statusCode,
    declared: true,
  });
  const openAi = template !== undefined && ['/v1/chat/completions', '/v1/completions', '/v1/models'].includes(template);
  const schema: z.ZodType | undefined =
    response.statusCode >= 400 ? (openAi ? OpenAiErrorSchema : ErrorEnvelopeSchema) : template === '/v1/models' ? ModelListSchema : response.statusCode === 202 ? AdmissionResponseSchema : template === '/v1/pools/{id}/health' ? PoolHealthSchema : undefined;
  if (schema) expect(schema.safeParse(JSON.parse(text)).error?.issues ?? []).toEqual([]);
  return { status: response.statusCode, text };
}

test('ORCH-3044: the document is served at a versioned path without a key, and is the generated one', async () => {
  const response = await request(`${stack.url}/v1/openapi.json`);
  expect(response.statusCode).toBe(200);
  expect(await response.body.json()).toEqual(JSON.parse(JSON.stringify(buildOpenApiDocument())));
});

test('ORCH-3044: every public route the gateway registers is in the document, and every documented operation is routed', () => {
  const routes = stack.gateway.app.printRoutes({ commonPrefix: false });
  for (const [template, operations] of Object.entries(document.paths)) {
    for (const method of Object.keys(operations)) {
      expect({ template, method, routed: stack.gateway.app.hasRoute({ method: method.toUpperCase(), url: template.replace(/\{([^}]+)\}/g, ':$1') }) }).toEqual({ template, method, routed: true });
    }
  }
  const publicRoutes = [...routes.matchAll(/(?:^|\s)(\/v1\/\S*) \(([A-Z, ]+)\)/gm)].flatMap((match) =>
    (match[2] ?? '').split(', ').filter((method) => method !== 'HEAD').map((method) => `${method} ${(match[1] ?? '').replace(/:([a-z]+)/g, '{$1}')}`),
  );
  expect(publicRoutes.length).toBeGreaterThan(0);
  const documented = Object.entries(document.paths).flatMap(([template, operations]) => Object.keys(operations).map((method) => `${method.toUpperCase()} ${template}`));
  expect(publicRoutes.filter((route) => !documented.includes(route))).toEqual([]);
});

test('ORCH-3044 ORCH-2006: every status the routes answer is declared for the route, and every body has its schema', async () => {
  const body = taskRequest(stack, { max_tokens: 2 });
  const taskId = String(body['task_id']);
  expect((await expectConforming('POST', '/v1/tasks', { body })).status).toBe(202);
  await readStream(`${stack.url}/v1/tasks/${taskId}/stream`).finished;
  expect((await expectConforming('POST', '/v1/tasks', { body: { ...body, ctx: 0 } })).status).toBe(400);
  expect((await expectConforming('POST', '/v1/tasks', { body: taskRequest(stack), headers: {} })).status).toBe(401);
  expect((await expectConforming('POST', '/v1/tasks', { body: taskRequest(stack, { priority: 'batch' }) })).status).toBe(429);
  expect((await expectConforming('GET', `/v1/tasks/${taskId}/stream`)).status).toBe(200);
  // Task ids are UUIDs: a malformed one names no task (issue 13: unknown ids are 404).
  expect((await expectConforming('GET', '/v1/tasks/not-a-uuid/stream')).status).toBe(404);
  expect((await expectConforming('GET', `/v1/tasks/${randomUUID()}/stream`)).status).toBe(404);
  expect((await expectConforming('POST', `/v1/tasks/${taskId}/cancel`)).status).toBe(204);
  expect((await expectConforming('POST', `/v1/tasks/${randomUUID()}/cancel`)).status).toBe(404);
  expect((await expectConforming('GET', `/v1/pools/${stack.poolId}/health`)).status).toBe(200);
  expect((await expectConforming('GET', '/v1/pools/nope/health')).status).toBe(404);
  expect((await expectConforming('GET', `/v1/pools/${stack.poolId}/health`, { headers: { authorization: `Bearer ${stack.apiKeys.tenantAData}` } })).status).toBe(403);
});

test('issue 11 ORCH-3044: the OpenAI-compatible routes answer only declared statuses, errors in OpenAI\'s shape with the contract code', async () => {
  const chat = { model: stack.model, messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 };
  expect((await expectConforming('POST', '/v1/chat/completions', { body: chat })).status).toBe(200);
  expect((await expectConforming('POST', '/v1/completions', { body: { model: stack.model, prompt: 'hi', max_tokens: 2 } })).status).toBe(200);
  expect((await expectConforming('POST', '/v1/chat/completions', { body: { ...chat, model: 'nope' } })).status).toBe(404);
  expect((await expectConforming('POST', '/v1/chat/completions', { body: { ...chat, logit_bias: {} } })).status).toBe(400);
  expect((await expectConforming('POST', '/v1/chat/completions', { body: chat, headers: {} })).status).toBe(401);
  expect((await expectConforming('POST', '/v1/chat/completions', { body: chat, headers: { ...stack.authHeaders, 'x-orch-priority': 'batch' } })).status).toBe(429);
  expect((await expectConforming('GET', '/v1/models')).status).toBe(200);
});
