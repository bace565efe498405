import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { connect } from 'node:net';
import { Readable } from 'node:stream';
import { Agent, request, type Dispatcher } from 'undici';
import { ErrorEnvelopeSchema } from '../../api/openapi/api-schemas';
import { buildOpenApiDocument } from '../../api/openapi/openapi-document';
import { OpenAiErrorSchema } from '../../api/openapi/openai-schemas';
import { parsePrometheusText } from '../support/prometheus-text';
import { readStream, tokensOf, waitFor } from '../support/sse-client';
import { startTestStack, taskRequest, type TestStack } from '../support/stack';

/** Small limits, so a test can reach them: issue 13 item 5 ("bad input everywhere"). */
const BODY_LIMIT_BYTES = 64 * 1024;
const MAX_CONCURRENT_REQUESTS = 6;
const MAX_CONNECTIONS = 24;
const HEADERS_TIMEOUT_MS = 1_000;
const REQUEST_TIMEOUT_MS = 2_000;

let stack: TestStack;
beforeAll(async () => {
  stack = await startTestStack({
    slots: 2,
    ttftMs: 1,
    interTokenMs: 5,
    custom: {
      gateway: {
        body_limit_bytes: BODY_LIMIT_BYTES,
        max_concurrent_requests: MAX_CONCURRENT_REQUESTS,
        max_connections: MAX_CONNECTIONS,
        headers_timeout_ms: HEADERS_TIMEOUT_MS,
        request_timeout_ms: REQUEST_TIMEOUT_MS,
      },
    },
  });
});
afterAll(async () => {
  await stack.stop();
});

interface Answer {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: unknown;
}

async function call(method: Dispatcher.HttpMethod, path: string, body?: string | Readable, dispatcher?: Dispatcher): Promise<Answer> {
  const response = await request(`${stack.url}${path}`, {
    method,
    headers: { ...stack.authHeaders, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body }),
    ...(dispatcher ? { dispatcher } : {}),
  });
  const text = await response.body.text();
  return { status: response.statusCode, headers: response.headers, body: text.length > 0 ? (JSON.parse(text) as unknown) : undefined };
}

async function metric(name: string): Promise<number> {
  const response = await request(`${stack.url}/metrics`);
  const { samples } = parsePrometheusText(await response.body.text());
  return samples.find((sample) => sample.name === name)?.value ?? Number.NaN;
}

/** Every operation of the OpenAPI document, its path parameters filled in, and the error schema its 413 names. */
function documentedOperations(): { method: Dispatcher.HttpMethod; path: string; openAi: boolean }[] {
  const paths = buildOpenApiDocument()['paths'] as Record<string, Record<string, { responses: Record<string, { content?: Record<string, { schema: { $ref: string } }> }> }>>;
  return Object.entries(paths).flatMap(([template, operations]) =>
    Object.entries(operations).map(([method, operation]) => ({
      method: method.toUpperCase(),
      path: template.replace('{id}', template.startsWith('/v1/pools/') ? stack.poolId : randomUUID()),
      openAi: operation.responses['413']?.content?.['application/json']?.schema.$ref === '#/components/schemas/OpenAiError',
    })),
  );
}

function expectTooLarge(answer: Answer, openAi: boolean, what: string): void {
  expect({ what, status: answer.status }).toEqual({ what, status: 413 });
  if (openAi) expect(OpenAiErrorSchema.parse(answer.body).error).toMatchObject({ code: 'INVALID_PARAMS', type: 'invalid_request_error' });
  else expect(ErrorEnvelopeSchema.parse(answer.body)).toMatchObject({ code: 'INVALID_PARAMS', retriable: false });
}

/** A JSON-looking body of `bytes` bytes, sent chunked (no content-length) when it is a stream. */
function oversizedBody(bytes: number): string {
  return `{"prompt":"${'x'.repeat(bytes)}"}`;
}
function chunked(text: string): Readable {
  const chunkBytes = 8 * 1024;
  return Readable.from((function* () {
    for (let offset = 0; offset < text.length; offset += chunkBytes) yield Buffer.from(text.slice(offset, offset + chunkBytes));
  })());
}

/** Python's http.client, chunked (encode_chunked, no content-length): a client that is not ours. */
function pythonChunkedPost(path: string, bytes: number): Promise<Answer> {
  const url = new URL(stack.url);
  const script = `
import http.client, json, sys
def body():
    chunk = b'x' * 8192
    for _ in range(${Math.ceil(bytes / 8192)}):
        yield chunk
c = http.client.HTTPConnection(${JSON.stringify(url.hostname)}, ${url.port})
c.request('POST', ${JSON.stringify(path)}, body=body(), headers={'Authorization': ${JSON.stringify(stack.authHeaders['authorization'])}, 'Content-Type': 'application/json'}, encode_chunked=True)
r = c.getresponse()
print(json.dumps({'status': r.status, 'body': r.read().decode('utf-8')}))
`;
  return new Promise((resolve, reject) => {
    const child = spawn('python3', ['-c', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    child.once('error', reject);
    child.once('exit', (code) => {
      if (code !== 0) return reject(new Error(`python exited ${code}`));
      const parsed = JSON.parse(output) as { status: number; body: string };
      resolve({ status: parsed.status, headers: {}, body: JSON.parse(parsed.body) as unknown });
    });
  });
}

/** A raw socket: what it receives until the server closes it. */
function rawExchange(send: (socket: ReturnType<typeof connect>) => void): Promise<string> {
  const url = new URL(stack.url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(url.port), url.hostname, () => send(socket));
    let received = '';
    socket.on('data', (chunk: Buffer) => (received += chunk.toString('utf8')));
    socket.on('error', (error: NodeJS.ErrnoException) => (error.code === 'ECONNRESET' ? undefined : reject(error)));
    socket.once('close', () => resolve(received));
  });
}

function envelopeIn(raw: string): unknown {
  return JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4));
}

test('issue 13: every documented route refuses a body over gateway.body_limit_bytes with 413 and the envelope (OpenAI routes in OpenAI\'s shape), by Content-Length and chunked, and keeps serving', async () => {
  const operations = documentedOperations();
  expect(operations.length).toBeGreaterThanOrEqual(15);
  const body = oversizedBody(BODY_LIMIT_BYTES + 1);
  for (const operation of operations) {
    expectTooLarge(await call(operation.method, operation.path, body), operation.openAi, `${operation.method} ${operation.path} (content-length)`);
  }
  // Chunked, no content-length: found while the body is read; the rest is read and dropped, so the answer arrives.
  for (const operation of operations.filter((candidate) => candidate.method === 'POST')) {
    expectTooLarge(await call(operation.method, operation.path, chunked(oversizedBody(4 * BODY_LIMIT_BYTES))), operation.openAi, `${operation.method} ${operation.path} (chunked)`);
  }
  expectTooLarge(await pythonChunkedPost('/v1/tasks', 4 * BODY_LIMIT_BYTES), false, 'python http.client POST /v1/tasks');
  expectTooLarge(await pythonChunkedPost('/v1/chat/completions', 4 * BODY_LIMIT_BYTES), true, 'python http.client POST /v1/chat/completions');

  // A body just under the limit is read and judged on its content.
  const underLimit = await call('POST', '/v1/tasks', JSON.stringify(taskRequest(stack, { prompt: 'x'.repeat(BODY_LIMIT_BYTES - 1_024) })));
  expect(underLimit.status).not.toBe(413);
  const served = await call('POST', '/v1/tasks', JSON.stringify(taskRequest(stack, { max_tokens: 4 })));
  expect(served.status).toBe(202);
});

test('issue 13: headers that never finish (slowloris) and a body that stalls get 408 with the envelope, then the socket is closed', async () => {
  const trickle = rawExchange((socket) => {
    socket.write(`GET /v1/replicasets HTTP/1.1\r\nHost: ${new URL(stack.url).host}\r\n`);
    // One header byte at a time, forever: only the headers timeout ends it.
    const timer = setInterval(() => (socket.writable ? socket.write('X') : clearInterval(timer)), 100);
    socket.once('close', () => clearInterval(timer));
  });
  const stalledBody = rawExchange((socket) => {
    socket.write(`POST /v1/tasks HTTP/1.1\r\nHost: ${new URL(stack.url).host}\r\ncontent-type: application/json\r\ncontent-length: 1000\r\nauthorization: ${stack.authHeaders['authorization'] ?? ''}\r\n\r\n{"task_id":`);
  });
  for (const raw of await Promise.all([trickle, stalledBody])) {
    expect(raw.startsWith('HTTP/1.1 408 ')).toBe(true);
    expect(ErrorEnvelopeSchema.parse(envelopeIn(raw))).toMatchObject({ code: 'INVALID_PARAMS', retriable: false });
  }
  expect((await call('GET', '/v1/replicasets')).status).toBe(200);
});

test('issue 13: past gateway.max_concurrent_requests (open streams included) requests get 503 POOL_UNAVAILABLE with Retry-After; running streams go on; the gateway serves again once streams end', async () => {
  const refusedBefore = await metric('http_requests_refused_total');
  // Long tasks, their streams held open: the gateway is at its cap.
  const taskIds: string[] = [];
  for (let index = 0; index < MAX_CONCURRENT_REQUESTS; index += 1) {
    const body = taskRequest(stack, { ctx: 2048, max_tokens: 1_500 });
    expect((await call('POST', '/v1/tasks', JSON.stringify(body))).status).toBe(202);
    taskIds.push(String(body['task_id']));
  }
  const streams = new Agent({ connections: MAX_CONCURRENT_REQUESTS });
  const open = await Promise.all(
    taskIds.map(async (taskId) => {
      const response = await request(`${stack.url}/v1/tasks/${taskId}/stream`, { headers: stack.authHeaders, dispatcher: streams });
      expect(response.statusCode).toBe(200);
      let text = '';
      response.body.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
      response.body.on('error', () => undefined);
      return { response, text: () => text };
    }),
  );

  // A flood of every kind of request: each one refused, typed, with retry hints.
  const flood = new Agent({ connections: 16 });
  const answers = await Promise.all(
    Array.from({ length: 12 }, (_unused, index) =>
      index % 3 === 0
        ? call('POST', '/v1/tasks', JSON.stringify(taskRequest(stack)), flood)
        : index % 3 === 1
          ? call('GET', '/v1/replicasets', undefined, flood)
          : call('POST', '/v1/chat/completions', JSON.stringify({ model: stack.model, messages: [{ role: 'user', content: 'hi' }] }), flood),
    ),
  );
  answers.forEach((answer, index) => {
    expect(answer.status).toBe(503);
    expect(answer.headers['retry-after']).toBe('1');
    expect(answer.headers['x-backoff-ms']).toBe('1000');
    if (index % 3 === 2) expect(OpenAiErrorSchema.parse(answer.body).error).toMatchObject({ code: 'POOL_UNAVAILABLE', type: 'server_error' });
    else expect(ErrorEnvelopeSchema.parse(answer.body)).toMatchObject({ code: 'POOL_UNAVAILABLE', retriable: true, retry_after_ms: 1_000 });
  });
  await flood.close();

  // The running tasks' tokens still arrive (the workers' /internal calls are never refused).
  const before = open.map((stream) => stream.text().length);
  await waitFor(() => open.some((stream, index) => stream.text().length > (before[index] ?? 0) && stream.text().includes('event: token')), 20_000, 'tokens on an open stream');

  // Clients go away: places free up and the gateway serves again.
  for (const stream of open) stream.response.body.destroy();
  await streams.destroy();
  let refusedWhileWaiting = 0;
  await waitFor(async () => {
    const answer = await call('GET', '/v1/replicasets');
    if (answer.status === 503) refusedWhileWaiting += 1;
    return answer.status === 200;
  }, 20_000, 'the gateway to serve again');
  for (const taskId of taskIds) expect((await call('POST', `/v1/tasks/${taskId}/cancel`)).status).toBe(204);
  const after = taskRequest(stack, { max_tokens: 8 });
  expect((await call('POST', '/v1/tasks', JSON.stringify(after))).status).toBe(202);
  const events = await readStream(`${stack.url}/v1/tasks/${String(after['task_id'])}/stream`).finished;
  expect(tokensOf(events).indices).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);

  expect((await metric('http_requests_refused_total')) - refusedBefore).toBe(answers.length + refusedWhileWaiting);
  // The scrape itself is the one request in flight.
  expect(await metric('http_requests_in_flight')).toBe(1);
}, 60_000);

test('issue 13: past gateway.max_connections a new socket is closed unanswered and counted; sockets that send nothing get 408; the gateway keeps serving', async () => {
  const droppedBefore = await metric('http_connections_dropped_total');
  const sockets = await Promise.all(Array.from({ length: MAX_CONNECTIONS + 16 }, () => rawExchange(() => undefined)));
  const dropped = sockets.filter((raw) => raw.length === 0);
  const timedOut = sockets.filter((raw) => raw.startsWith('HTTP/1.1 408 '));
  expect(dropped.length + timedOut.length).toBe(sockets.length);
  expect(dropped.length).toBeGreaterThanOrEqual(16);
  expect(timedOut.length).toBeGreaterThan(0);
  for (const raw of timedOut) expect(ErrorEnvelopeSchema.parse(envelopeIn(raw)).code).toBe('INVALID_PARAMS');
  expect((await metric('http_connections_dropped_total')) - droppedBefore).toBe(dropped.length);
  expect((await call('GET', '/v1/replicasets')).status).toBe(200);
});
