import { request } from 'undici';
import { taskWorkflowId } from '../../core/ids';
import type { TaskResult } from '../../core/task-workflow-contract';
import { readStream, tokensOf, waitFor } from '../support/sse-client';
import { startTestStack, taskRequest, type TestStack } from '../support/stack';

let stack: TestStack;

beforeAll(async () => {
  stack = await startTestStack({ slots: 2 });
});
afterAll(async () => {
  await stack.stop();
});

async function submit(body: unknown, headers: Record<string, string> = {}) {
  const response = await request(`${stack.url}/v1/tasks`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...stack.authHeaders, ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await response.body.text();
  return { status: response.statusCode, headers: response.headers, body: text.length > 0 ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

describe('submit → queue → run → stream (ORCH-2001, ORCH-2002)', () => {
  test('ORCH-2001 ORCH-2002 OC-CTRL-2020: a submitted task streams started, tokens and end through a real SSE client', async () => {
    const body = taskRequest(stack, { max_tokens: 12 });
    const admitted = await submit(body);
    expect(admitted.status).toBe(202);
    expect(admitted.body).toEqual({ task_id: body['task_id'], queue_position: expect.any(Number), predicted_start_ms: expect.any(Number), backoff_ms: 0 });

    const events = await readStream(`${stack.url}/v1/tasks/${String(body['task_id'])}/stream`).finished;
    expect(events[0]?.event).toBe('started');
    expect(events[0]?.data).toEqual({ queue_position: expect.any(Number), predicted_start_ms: expect.any(Number) });
    const { text, indices } = tokensOf(events);
    expect(indices).toEqual([...Array(12).keys()]);
    expect(text.length).toBeGreaterThan(0);
    const end = events.at(-1);
    expect(end?.event).toBe('end');
    expect(end?.data).toEqual({ tokens_out: 12, decode_ms: expect.any(Number) });
    // Frame ids never decrease (stream positions; a metrics frame repeats the id before it).
    const ids = events.map((event) => Number(event.id));
    expect(ids).toEqual([...ids].sort((a, b) => a - b));

    const result = (await stack.client.workflow.getHandle(taskWorkflowId(String(body['task_id']))).result()) as TaskResult;
    expect(result.state).toBe('completed');
    expect(result.text).toBe(text);
  });

  test('ORCH-2002: the wire framing is exactly id/event/data lines and a blank line', async () => {
    const body = taskRequest(stack, { max_tokens: 2 });
    await submit(body);
    const response = await request(`${stack.url}/v1/tasks/${String(body['task_id'])}/stream`, { headers: { accept: 'text/event-stream', ...stack.authHeaders } });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toMatch(/^text\/event-stream/);
    expect(response.headers['cache-control']).toBe('no-cache');
    const raw = await response.body.text();
    const frames = raw.split('\n\n').filter((frame) => frame.length > 0 && !frame.startsWith(':'));
    expect(frames[0]).toMatch(/^id: 0\nevent: started\ndata: \{"queue_position":\d+,"predicted_start_ms":\d+\}$/);
    for (const frame of frames) expect(frame).toMatch(/^id: \d+\nevent: (started|token|metrics|end|error)\ndata: \{.*\}$/);
    expect(frames.filter((frame) => frame.includes('event: token'))).toHaveLength(2);
    expect(frames.at(-1)).toMatch(/^id: \d+\nevent: end\ndata: \{"tokens_out":2,"decode_ms":\d+\}$/);
  });

  test('the seed reaches the engine: the same seed and prompt give the same tokens on the mock engine; another seed differs', async () => {
    const run = async (seed: number) => {
      const body = taskRequest(stack, { seed, max_tokens: 10 });
      await submit(body);
      return tokensOf(await readStream(`${stack.url}/v1/tasks/${String(body['task_id'])}/stream`).finished).text;
    };
    const first = await run(7);
    expect(await run(7)).toBe(first);
    expect(await run(8)).not.toBe(first);
  });

  test('Last-Event-ID resumes after the given frame', async () => {
    const body = taskRequest(stack, { max_tokens: 8 });
    await submit(body);
    const url = `${stack.url}/v1/tasks/${String(body['task_id'])}/stream`;
    const all = await readStream(url).finished;
    const resumeAfter = all[4];
    expect(resumeAfter).toBeDefined();
    const resumed = await readStream(url, { lastEventId: resumeAfter?.id ?? '' }).finished;
    expect(resumed.map((event) => event.id)).toEqual(all.slice(5).map((event) => event.id));
    expect(resumed.map((event) => event.data)).toEqual(all.slice(5).map((event) => event.data));
  });

  test('a stream read after the gateway forgot it is rebuilt from the workflow result', async () => {
    const body = taskRequest(stack, { max_tokens: 6 });
    await submit(body);
    const taskId = String(body['task_id']);
    const live = await readStream(`${stack.url}/v1/tasks/${taskId}/stream`).finished;
    stack.gateway.hub.discard(taskId);
    const rebuilt = await readStream(`${stack.url}/v1/tasks/${taskId}/stream`).finished;
    expect(tokensOf(rebuilt)).toEqual(tokensOf(live));
    expect(rebuilt.at(-1)?.data).toEqual({ tokens_out: 6, decode_ms: expect.any(Number) });
  });
});

describe('idempotent resubmission (ORCH-3024)', () => {
  test('ORCH-3024: resubmitting the same task_id returns 202 for the same task and runs it once', async () => {
    const body = taskRequest(stack, { max_tokens: 4 });
    const first = await submit(body);
    const second = await submit(body);
    expect(first.status).toBe(202);
    expect(second.status).toBe(202);
    expect(second.body['task_id']).toBe(body['task_id']);
    await readStream(`${stack.url}/v1/tasks/${String(body['task_id'])}/stream`).finished;
    // After the task ended and the gateway forgot it, a resubmit is still recognized through Temporal.
    stack.gateway.hub.discard(String(body['task_id']));
    const third = await submit(body);
    expect(third.status).toBe(202);
    const runs = [];
    for await (const execution of stack.client.workflow.list({ query: `WorkflowId = '${taskWorkflowId(String(body['task_id']))}'` })) runs.push(execution);
    expect(runs.length).toBeLessThanOrEqual(1);
    // Run once: one decode on the engine, whether it was dispatched from the queue or fast-started (the
    // replica logs one line per generation, after the workflow's result is in).
    await stack.client.workflow.getHandle(taskWorkflowId(String(body['task_id']))).result();
    const decodes = stack.logs.lines().filter((line) => line['msg'] === 'task decoded' && line['job_id'] === body['task_id']);
    expect(decodes).toHaveLength(1);
  });

  test('ORCH-3024: the same task_id with a different body is refused with INVALID_PARAMS', async () => {
    const body = taskRequest(stack, { max_tokens: 4 });
    expect((await submit(body)).status).toBe(202);
    const changed = await submit({ ...body, prompt: 'something else' });
    expect(changed.status).toBe(400);
    expect(changed.body['code']).toBe('INVALID_PARAMS');
  });
});

describe('invalid requests (OC-CTRL-2030, ORCH-2006, ORCH-3014)', () => {
  const cases: [string, (base: Record<string, unknown>) => unknown][] = [
    ['malformed JSON', () => '{"task_id": '],
    ['an empty body', () => ''],
    ['a missing required field (max_tokens)', (base) => ({ ...base, max_tokens: undefined })],
    ['a task_id that is not a UUID', (base) => ({ ...base, task_id: 'abc' })],
    ['an unknown engine', (base) => ({ ...base, engine: 'ollama' })],
    ['an unknown priority', (base) => ({ ...base, priority: 'urgent' })],
    ['a negative max_tokens', (base) => ({ ...base, max_tokens: -1 })],
    ['a fractional ctx', (base) => ({ ...base, ctx: 10.5 })],
    ['an unknown field', (base) => ({ ...base, max_token: 3 })],
    ['a completion without a prompt', (base) => ({ ...base, prompt: undefined })],
    ['a seed beyond 2^53', (base) => ({ ...base, seed: 2 ** 60 })],
    ['ctx above the model limit', (base) => ({ ...base, ctx: 100_000 })],
    ['max_tokens above ctx', (base) => ({ ...base, ctx: 64, max_tokens: 65 })],
    ['a model no pool serves', (base) => ({ ...base, model_ref: 'sha256:unknown' })],
    ['an unsupported workload', (base) => ({ ...base, workload: 'embedding' })],
    ['a JSON array body', () => [1, 2]],
  ];
  test.each(cases)('OC-CTRL-2030: %s → 400 INVALID_PARAMS in the error envelope', async (_name, makeBody) => {
    const base = taskRequest(stack);
    const body = makeBody(base);
    const cleaned = typeof body === 'object' && body !== null && !Array.isArray(body)
      ? Object.fromEntries(Object.entries(body).filter(([, value]) => value !== undefined))
      : body;
    const response = await submit(typeof cleaned === 'string' ? cleaned : JSON.stringify(cleaned));
    expect(response.status).toBe(400);
    expect(response.body).toEqual(expect.objectContaining({ code: 'INVALID_PARAMS', message: expect.any(String), retriable: false }));
  });

  test('OC-CTRL-2030: a non-JSON content type → 400 INVALID_PARAMS', async () => {
    const response = await request(`${stack.url}/v1/tasks`, { method: 'POST', headers: { 'content-type': 'text/plain', ...stack.authHeaders }, body: 'hello' });
    expect(response.statusCode).toBe(400);
    expect(((await response.body.json()) as { code: string }).code).toBe('INVALID_PARAMS');
  });

  test('an invalid body starts no workflow', async () => {
    const body = taskRequest(stack, { ctx: 100_000 });
    expect((await submit(body)).status).toBe(400);
    await expect(stack.client.workflow.getHandle(taskWorkflowId(String(body['task_id']))).describe()).rejects.toMatchObject({ name: 'WorkflowNotFoundError' });
  });
});

describe('ids and headers', () => {
  test('unknown task ids → 404 on stream and cancel', async () => {
    const unknown = '3f8a2c1e-6b7d-4e5f-9a0b-1c2d3e4f5a6b';
    const stream = await request(`${stack.url}/v1/tasks/${unknown}/stream`, { headers: stack.authHeaders });
    expect(stream.statusCode).toBe(404);
    await stream.body.dump();
    const cancel = await request(`${stack.url}/v1/tasks/${unknown}/cancel`, { method: 'POST', headers: stack.authHeaders });
    expect(cancel.statusCode).toBe(404);
    expect(((await cancel.body.json()) as { code: string }).code).toBe('INVALID_PARAMS');
  });

  test('OC-CTRL-2052: X-Correlation-Id is echoed on 202, SSE and 204, and generated when absent', async () => {
    const body = taskRequest(stack, { max_tokens: 3 });
    const admitted = await submit(body, { 'x-correlation-id': 'corr-abc-123' });
    expect(admitted.headers['x-correlation-id']).toBe('corr-abc-123');
    const sse = await request(`${stack.url}/v1/tasks/${String(body['task_id'])}/stream`, { headers: { 'x-correlation-id': 'corr-sse', ...stack.authHeaders } });
    expect(sse.headers['x-correlation-id']).toBe('corr-sse');
    await sse.body.text();
    const cancel = await request(`${stack.url}/v1/tasks/${String(body['task_id'])}/cancel`, { method: 'POST', headers: { 'x-correlation-id': 'corr-cancel', ...stack.authHeaders } });
    expect(cancel.statusCode).toBe(204);
    expect(cancel.headers['x-correlation-id']).toBe('corr-cancel');
    const generated = await submit('{');
    expect(String(generated.headers['x-correlation-id'])).toMatch(/^[0-9a-f-]{36}$/);
  });

  test('ORCH-3029: the admission log line carries queue_position and predicted_start_ms', async () => {
    const body = taskRequest(stack, { max_tokens: 2 });
    await submit(body);
    await waitFor(() => stack.logs.lines().some((line) => line['msg'] === 'task admitted' && line['job_id'] === body['task_id']), 5_000, 'admission log');
    const line = stack.logs.lines().find((candidate) => candidate['msg'] === 'task admitted' && candidate['job_id'] === body['task_id']);
    expect(line).toEqual(expect.objectContaining({ queue_position: expect.any(Number), predicted_start_ms: expect.any(Number), pool_id: stack.poolId }));
  });

  test('ORCH-3029: the dispatch line sets the predicted start beside the real queue time, and /metrics keeps the error', async () => {
    const body = taskRequest(stack, { max_tokens: 2 });
    await submit(body);
    const isDispatch = (candidate: Record<string, unknown>) => candidate['msg'] === 'task dispatched' && candidate['job_id'] === body['task_id'] && 'predicted_start_ms' in candidate;
    await waitFor(() => stack.logs.lines().some(isDispatch), 10_000, 'dispatch log');
    const line = stack.logs.lines().find(isDispatch) ?? {};
    const admitted = stack.logs.lines().find((candidate) => candidate['msg'] === 'task admitted' && candidate['job_id'] === body['task_id']) ?? {};
    expect(line['predicted_start_ms']).toBe(admitted['predicted_start_ms']);
    expect(line['start_prediction_error_ms']).toBe(Number(line['queue_time_ms']) - Number(line['predicted_start_ms']));
    const metrics = await request(`${stack.url}/metrics`).then((response) => response.body.text());
    expect(metrics).toMatch(new RegExp(`start_prediction_error_ms_count\\{[^}]*pool_id="${stack.poolId}"[^}]*\\} [1-9]`));
  });
});
