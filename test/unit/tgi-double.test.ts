import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request } from 'undici';
import { TGI_DOUBLE_VERSION, startTgiDouble } from '../../gpu-workers/engines/tgi-double/tgi-double';
import type { TgiDouble, TgiDoubleOptions } from '../../gpu-workers/engines/tgi-double/tgi-double';
import { prometheusValue } from '../../gpu-workers/engines/prometheus-sample';

/**
 * The TGI test double answers as TGI's sources say (huggingface/text-generation-inference at db931fcf:
 * router/src/lib.rs, server.rs, infer/mod.rs, validation.rs; docs/source/reference/metrics.md). The adapter is
 * verified against this double only, so each shape it relies on is pinned here against those sources.
 */
const agent = new Agent({ keepAliveTimeout: 10, keepAliveMaxTimeout: 10 });
const doubles: TgiDouble[] = [];

async function start(options: TgiDoubleOptions = {}): Promise<TgiDouble> {
  const double = await startTgiDouble({ ttftMs: 0, interTokenMs: 1, ...options });
  doubles.push(double);
  return double;
}

afterEach(async () => {
  await Promise.all(doubles.splice(0).map((double) => double.close()));
});
afterAll(async () => {
  await agent.close();
});

async function post(double: TgiDouble, path: string, body: unknown, contentType = 'application/json') {
  return request(`${double.url}${path}`, { method: 'POST', dispatcher: agent, headers: { 'content-type': contentType }, body: typeof body === 'string' ? body : JSON.stringify(body) });
}

/** The raw SSE text of a whole /generate_stream answer, and its `data:` payloads. */
async function streamOf(double: TgiDouble, body: unknown): Promise<{ status: number; headers: Record<string, unknown>; raw: string; events: Record<string, unknown>[] }> {
  const response = await post(double, '/generate_stream', body);
  const raw = await response.body.text();
  const events = raw
    .split('\n\n')
    .filter((block) => block.startsWith('data:'))
    .map((block) => JSON.parse(block.slice('data:'.length)) as Record<string, unknown>);
  return { status: response.statusCode, headers: response.headers, raw, events };
}

async function metricsOf(double: TgiDouble): Promise<string> {
  const response = await request(`${double.url}/metrics`, { dispatcher: agent });
  return response.body.text();
}

describe('TGI test double: POST /generate_stream (router/src/lib.rs StreamResponse, server.rs generate_stream)', () => {
  test('events are `data:{json}` without a space, index from 1, generated_text and details only on the last, no [DONE]', async () => {
    const double = await start();
    const { status, headers, raw, events } = await streamOf(double, { inputs: 'Hello there', parameters: { max_new_tokens: 5, details: true, seed: 7, do_sample: true } });
    expect(status).toBe(200);
    expect(headers['content-type']).toBe('text/event-stream');
    expect(headers['x-accel-buffering']).toBe('no');
    expect(raw.startsWith('data:{')).toBe(true);
    expect(raw).not.toContain('[DONE]');
    expect(events.map((event) => event['index'])).toEqual([1, 2, 3, 4, 5]);
    for (const event of events.slice(0, -1)) {
      expect(event['generated_text']).toBeNull();
      expect(event['details']).toBeNull();
    }
    for (const event of events) expect(Object.keys(event['token'] as object).sort()).toEqual(['id', 'logprob', 'special', 'text']);
    const last = events.at(-1);
    const text = events.map((event) => (event['token'] as { text: string }).text).join('');
    expect(last?.['generated_text']).toBe(text);
    // Hello there = BOS + 2 words; seed reported because sampling is on.
    expect(last?.['details']).toEqual({ finish_reason: 'length', generated_tokens: 5, seed: 7, input_length: 3 });
  });

  test('details are absent unless asked (serde default false), seed is null without sampling, output is greedy (seed-independent) then', async () => {
    const double = await start();
    const noDetails = await streamOf(double, { inputs: 'abc', parameters: { max_new_tokens: 3 } });
    expect(noDetails.events.at(-1)?.['details']).toBeNull();
    const greedyA = await streamOf(double, { inputs: 'abc', parameters: { max_new_tokens: 6, details: true, seed: 1 } });
    const greedyB = await streamOf(double, { inputs: 'abc', parameters: { max_new_tokens: 6, details: true, seed: 2 } });
    expect((greedyA.events.at(-1)?.['details'] as { seed: unknown }).seed).toBeNull();
    expect(greedyA.events.at(-1)?.['generated_text']).toBe(greedyB.events.at(-1)?.['generated_text']);
    const sampledA = await streamOf(double, { inputs: 'abc', parameters: { max_new_tokens: 6, seed: 1, temperature: 0.7 } });
    const sampledA2 = await streamOf(double, { inputs: 'abc', parameters: { max_new_tokens: 6, seed: 1, temperature: 0.7 } });
    const sampledB = await streamOf(double, { inputs: 'abc', parameters: { max_new_tokens: 6, seed: 2, temperature: 0.7 } });
    expect(sampledA.events.at(-1)?.['generated_text']).toBe(sampledA2.events.at(-1)?.['generated_text']);
    expect(sampledA.events.at(-1)?.['generated_text']).not.toBe(sampledB.events.at(-1)?.['generated_text']);
  });

  test('eos_token: the last token is the special EOS, kept out of generated_text; stop_sequence ends on the token that completes it', async () => {
    const double = await start({ emitEos: true });
    const eos = await streamOf(double, { inputs: 'tell me', parameters: { max_new_tokens: 200, details: true } });
    const last = eos.events.at(-1);
    expect((last?.['details'] as { finish_reason: string }).finish_reason).toBe('eos_token');
    expect(last?.['token']).toMatchObject({ special: true, text: '</s>' });
    const shown = eos.events.slice(0, -1).map((event) => (event['token'] as { text: string }).text).join('');
    expect(last?.['generated_text']).toBe(shown);

    const plain = await streamOf(double, { inputs: 'x y', parameters: { max_new_tokens: 40, details: true } });
    const third = (plain.events[2]?.['token'] as { text: string }).text;
    const stopped = await streamOf(double, { inputs: 'x y', parameters: { max_new_tokens: 40, details: true, stop: [third] } });
    expect((stopped.events.at(-1)?.['details'] as { finish_reason: string }).finish_reason).toBe('stop_sequence');
    expect(String(stopped.events.at(-1)?.['generated_text']).endsWith(third)).toBe(true);
  });

  test('errors after the headers are one `{"error","error_type"}` event of a 200 stream: validation (infer/mod.rs, validation.rs messages)', async () => {
    const double = await start({ maxTotalTokens: 16 });
    const cases: [unknown, string][] = [
      [{ inputs: 'a', parameters: { max_new_tokens: 0 } }, 'Input validation error: `max_new_tokens` must be strictly positive'],
      [{ inputs: 'a', parameters: { temperature: 0 } }, 'Input validation error: `temperature` must be strictly positive'],
      [{ inputs: 'a', parameters: { top_p: 1 } }, 'Input validation error: `top_p` must be > 0.0 and < 1.0'],
      [{ inputs: '', parameters: {} }, 'Input validation error: `inputs` cannot be empty'],
      [{ inputs: 'a', parameters: { stop: ['1', '2', '3', '4', '5'] } }, 'Input validation error: `stop` supports up to 4 stop sequences. Given: 5'],
      [{ inputs: 'a b c', parameters: { max_new_tokens: 13 } }, 'Input validation error: `inputs` tokens + `max_new_tokens` must be <= 16. Given: 4 `inputs` tokens and 13 `max_new_tokens`'],
      [{ inputs: 'a', parameters: { best_of: 2, do_sample: true } }, 'Input validation error: `best_of` != 1 is not supported when streaming tokens'],
    ];
    for (const [body, error] of cases) {
      const { status, events } = await streamOf(double, body);
      expect(status).toBe(200);
      expect(events).toEqual([{ error, error_type: 'validation' }]);
    }
    expect(double.stats().permitsInUse).toBe(0);
  });

  test('best_of on /generate is refused as TGI refuses it on a server run with --max-best-of 1 (validation.rs validate_best_of): 422, and /info says max_best_of 1', async () => {
    const double = await start();
    const refused = await post(double, '/generate', { inputs: 'a', parameters: { best_of: 2, do_sample: true, max_new_tokens: 2 } });
    expect(refused.statusCode).toBe(422);
    expect(await refused.body.json()).toEqual({ error: 'Input validation error: `best_of` != 1 is not allowed for this endpoint', error_type: 'validation' });
    const info = (await (await request(`${double.url}/info`, { dispatcher: agent })).body.json()) as Record<string, unknown>;
    expect(info['max_best_of']).toBe(1);
    expect(double.stats().permitsInUse).toBe(0);
    const accepted = await post(double, '/generate', { inputs: 'a', parameters: { best_of: 1, max_new_tokens: 2 } });
    expect(accepted.statusCode).toBe(200);
    await accepted.body.dump();
  });

  test('a body axum cannot read is refused in plain text before TGI sees it: 400 bad JSON, 422 wrong shape, 415 wrong content type', async () => {
    const double = await start();
    const badJson = await post(double, '/generate_stream', '{"inputs":');
    expect(badJson.statusCode).toBe(400);
    expect(await badJson.body.text()).toMatch(/^Failed to parse the request body as JSON/);
    const noInputs = await post(double, '/generate_stream', { parameters: {} });
    expect(noInputs.statusCode).toBe(422);
    expect(await noInputs.body.text()).toMatch(/^Failed to deserialize the JSON body into the target type/);
    const text = await post(double, '/generate_stream', '{"inputs":"a"}', 'text/plain');
    expect(text.statusCode).toBe(415);
    await text.body.dump();
    expect(double.stats().requestCount).toBe(0);
  });

  test('max_concurrent_requests: past the semaphore a stream gets the overloaded event, /generate a 429; a finished request frees its permit', async () => {
    const double = await start({ maxConcurrentRequests: 1, interTokenMs: 20 });
    const controller = new AbortController();
    const long = await request(`${double.url}/generate_stream`, {
      method: 'POST',
      dispatcher: agent,
      signal: controller.signal,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ inputs: 'a', parameters: { max_new_tokens: 500 } }),
    });
    const overloaded = await streamOf(double, { inputs: 'b', parameters: { max_new_tokens: 2 } });
    expect(overloaded.status).toBe(200);
    expect(overloaded.events).toEqual([{ error: 'Model is overloaded', error_type: 'overloaded' }]);
    const whole = await post(double, '/generate', { inputs: 'b', parameters: { max_new_tokens: 2 } });
    expect(whole.statusCode).toBe(429);
    expect(await whole.body.json()).toEqual({ error: 'Model is overloaded', error_type: 'overloaded' });
    expect(prometheusValue(await metricsOf(double), 'tgi_request_failure')).toBe(2);
    controller.abort();
    await long.body.text().catch(() => undefined);
    for (let i = 0; i < 100 && double.stats().permitsInUse > 0; i++) await sleep(10);
    const after = await streamOf(double, { inputs: 'b', parameters: { max_new_tokens: 2 } });
    expect(after.events).toHaveLength(2);
  });

  test('a client that leaves stops its generation: the batch slot is freed, the metrics show it (tgi_batch_current_size, tgi_request_failure{err="dropped"})', async () => {
    const double = await start({ maxConcurrentRequests: 4, maxBatchSize: 1, interTokenMs: 10 });
    expect(await metricsOf(double)).not.toContain('tgi_batch_current_size');
    const controllers = [new AbortController(), new AbortController()];
    const bodies = await Promise.all(
      controllers.map((controller) =>
        request(`${double.url}/generate_stream`, {
          method: 'POST',
          dispatcher: agent,
          signal: controller.signal,
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ inputs: 'go on', parameters: { max_new_tokens: 1000 } }),
        }),
      ),
    );
    await sleep(50);
    let text = await metricsOf(double);
    expect(prometheusValue(text, 'tgi_batch_current_size')).toBe(1);
    expect(prometheusValue(text, 'tgi_queue_size')).toBe(1);
    for (const controller of controllers) controller.abort();
    await Promise.all(bodies.map((body) => body.body.text().catch(() => undefined)));
    for (let i = 0; i < 100 && double.stats().permitsInUse > 0; i++) await sleep(10);
    text = await metricsOf(double);
    expect(prometheusValue(text, 'tgi_batch_current_size')).toBe(0);
    expect(prometheusValue(text, 'tgi_queue_size')).toBe(0);
    expect(text).toContain('tgi_request_failure{err="dropped"} 2');
    const generated = prometheusValue(text, 'tgi_request_generated_tokens_sum');
    await sleep(100);
    expect(prometheusValue(await metricsOf(double), 'tgi_request_generated_tokens_sum')).toBe(generated);
  });
});

describe('TGI test double: the other routes', () => {
  test('POST /generate: GenerateResponse with Details (prefill empty, tokens listed) and the x-* timing headers; POST / wraps it in a list and returns the full text', async () => {
    const double = await start();
    const response = await post(double, '/generate', { inputs: 'one two', parameters: { max_new_tokens: 4, details: true } });
    expect(response.statusCode).toBe(200);
    expect(response.headers['x-prompt-tokens']).toBe('3');
    expect(response.headers['x-generated-tokens']).toBe('4');
    const body = (await response.body.json()) as { generated_text: string; details: { finish_reason: string; generated_tokens: number; seed: null; prefill: unknown[]; tokens: { text: string }[] } };
    expect(body.details).toMatchObject({ finish_reason: 'length', generated_tokens: 4, seed: null, prefill: [] });
    expect(body.details.tokens.map((token) => token.text).join('')).toBe(body.generated_text);
    const compat = await post(double, '/', { inputs: 'one two', parameters: { max_new_tokens: 4 } });
    const wrapped = (await compat.body.json()) as { generated_text: string }[];
    expect(wrapped).toEqual([{ generated_text: `one two${body.generated_text}` }]);
  });

  test('GET /info (Info), /health 200 empty or 503 {"error":"unhealthy","error_type":"healthcheck"}, POST /tokenize (SimpleToken list)', async () => {
    const double = await start({ maxConcurrentRequests: 3, maxTotalTokens: 1024 });
    const info = (await (await request(`${double.url}/info`, { dispatcher: agent })).body.json()) as Record<string, unknown>;
    expect(Object.keys(info).sort()).toEqual(
      [
        'model_id', 'model_sha', 'model_pipeline_tag', 'max_concurrent_requests', 'max_best_of', 'max_stop_sequences', 'max_input_tokens',
        'max_total_tokens', 'validation_workers', 'max_client_batch_size', 'router', 'version', 'sha', 'docker_label',
      ].sort(),
    );
    expect(info).toMatchObject({ max_concurrent_requests: 3, max_total_tokens: 1024, max_input_tokens: 1023, version: TGI_DOUBLE_VERSION, router: 'tgi-test-double' });
    const healthy = await request(`${double.url}/health`, { dispatcher: agent });
    expect(healthy.statusCode).toBe(200);
    expect(await healthy.body.text()).toBe('');
    double.setHealthy(false);
    const unhealthy = await request(`${double.url}/health`, { dispatcher: agent });
    expect(unhealthy.statusCode).toBe(503);
    expect(await unhealthy.body.json()).toEqual({ error: 'unhealthy', error_type: 'healthcheck' });
    const tokens = (await (await post(double, '/tokenize', { inputs: 'héllo world' })).body.json()) as { id: number; text: string; start: number; stop: number }[];
    expect(tokens.map(({ text, start, stop }) => ({ text, start, stop }))).toEqual([
      { text: '', start: 0, stop: 0 },
      { text: 'héllo', start: 0, stop: 6 },
      { text: 'world', start: 7, stop: 12 },
    ]);
  });

  test('GET /metrics: tgi_* names with the types of docs/source/reference/metrics.md', async () => {
    const double = await start();
    await streamOf(double, { inputs: 'count me', parameters: { max_new_tokens: 3 } });
    const text = await metricsOf(double);
    expect(text).toContain('# TYPE tgi_request_count counter\ntgi_request_count 1');
    expect(text).toContain('# TYPE tgi_request_success counter\ntgi_request_success 1');
    expect(text).toMatch(/# TYPE tgi_batch_current_size gauge\ntgi_batch_current_size 0/);
    expect(text).toMatch(/# TYPE tgi_queue_size gauge\ntgi_queue_size 0/);
    expect(text).toContain('# TYPE tgi_request_generated_tokens histogram');
    expect(prometheusValue(text, 'tgi_request_generated_tokens_sum')).toBe(3);
    expect(prometheusValue(text, 'tgi_request_input_length_sum')).toBe(3);
    expect(text).toContain('tgi_request_duration_bucket{le="+Inf"} 1');
  });
});
