import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request } from 'undici';
import { MOCK_BUILD_INFO, startMockEngine } from '../../gpu-workers/engines/mock-llamacpp/mock-engine';
import type { MockEngine, MockEngineOptions } from '../../gpu-workers/engines/mock-llamacpp/mock-engine';
import { applyMockChatTemplate } from '../../gpu-workers/engines/mock-llamacpp/mock-openai';
import { createLlamaCppAdapter } from '../../gpu-workers/engines/llamacpp/llamacpp-adapter';

interface Chunk {
  index?: number;
  content: string;
  tokens?: number[];
  stop: boolean;
  id_slot?: number;
  tokens_predicted: number;
  tokens_evaluated: number;
  stop_type?: string;
  generation_settings?: { seed: number; n_predict: number };
  timings?: { prompt_n: number; prompt_ms: number; predicted_n: number; predicted_ms: number };
}

interface SlotView {
  id: number;
  id_task: number;
  n_ctx: number;
  is_processing: boolean;
  params: { seed: number };
  next_token: { n_decoded: number };
}

// Short keep-alive so the agent never holds the test process open (undici's writing-tests advice).
const agent = new Agent({ keepAliveTimeout: 10, keepAliveMaxTimeout: 10 });
const engines: MockEngine[] = [];
const controllers: AbortController[] = [];

async function start(options: MockEngineOptions): Promise<MockEngine> {
  const engine = await startMockEngine(options);
  engines.push(engine);
  return engine;
}

afterEach(async () => {
  for (const controller of controllers.splice(0)) controller.abort();
  await Promise.all(engines.splice(0).map((engine) => engine.close()));
});

afterAll(async () => {
  await agent.close();
});

async function get(engine: MockEngine, path: string): Promise<{ status: number; text: string }> {
  const response = await request(`${engine.url}${path}`, { dispatcher: agent });
  return { status: response.statusCode, text: await response.body.text() };
}

async function getJson<T>(engine: MockEngine, path: string): Promise<{ status: number; body: T }> {
  const response = await get(engine, path);
  return { status: response.status, body: JSON.parse(response.text) as T };
}

async function post(engine: MockEngine, body: unknown, signal?: AbortSignal) {
  return request(`${engine.url}/completion`, {
    method: 'POST',
    dispatcher: agent,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: signal ?? null,
  });
}

function parseSse(text: string): Chunk[] {
  expect(text.endsWith('\n\n')).toBe(true);
  return text
    .split('\n\n')
    .filter((event) => event.length > 0)
    .map((event) => {
      expect(event.startsWith('data: ')).toBe(true);
      return JSON.parse(event.slice('data: '.length)) as Chunk;
    });
}

async function streamCompletion(engine: MockEngine, body: Record<string, unknown>): Promise<Chunk[]> {
  const response = await post(engine, { ...body, stream: true });
  expect(response.statusCode).toBe(200);
  expect(response.headers['content-type']).toContain('text/event-stream');
  return parseSse(await response.body.text());
}

async function completeJson(engine: MockEngine, body: Record<string, unknown>): Promise<Chunk> {
  const response = await post(engine, { ...body, stream: false });
  expect(response.statusCode).toBe(200);
  return (await response.body.json()) as Chunk;
}

function streamedText(chunks: readonly Chunk[]): string {
  return chunks.map((chunk) => chunk.content).join('');
}

async function postTo(engine: MockEngine, path: string, body: unknown) {
  return request(`${engine.url}${path}`, {
    method: 'POST',
    dispatcher: agent,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

interface OpenAiTimings {
  prompt_n: number;
  predicted_n: number;
  predicted_ms: number;
}

interface OpenAiUsage {
  completion_tokens: number;
  prompt_tokens: number;
  total_tokens: number;
  prompt_tokens_details: { cached_tokens: number };
}

interface TextCompletionChunk {
  choices: { text: string; index: number; logprobs: null; finish_reason: string | null }[];
  created: number;
  model: string;
  system_fingerprint: string;
  object: string;
  id: string;
  usage?: OpenAiUsage;
  timings?: OpenAiTimings;
}

interface ChatChunk {
  choices: { finish_reason: string | null; index: number; delta: { role?: string; content?: string | null } }[];
  created: number;
  id: string;
  model: string;
  system_fingerprint: string;
  object: string;
  usage?: OpenAiUsage;
  timings?: OpenAiTimings;
}

/** An OpenAI-style stream: `data: {json}` events, the last one `data: [DONE]`. */
async function streamOpenAi<T>(engine: MockEngine, path: string, body: Record<string, unknown>): Promise<{ chunks: T[]; raw: string[] }> {
  const response = await postTo(engine, path, { ...body, stream: true });
  expect(response.statusCode).toBe(200);
  expect(response.headers['content-type']).toContain('text/event-stream');
  const text = await response.body.text();
  expect(text.endsWith('data: [DONE]\n\n')).toBe(true);
  const raw = text.split('\n\n').filter((event) => event.length > 0);
  raw.forEach((event) => expect(event.startsWith('data: ')).toBe(true));
  const chunks = raw.slice(0, -1).map((event) => JSON.parse(event.slice('data: '.length)) as T);
  return { chunks, raw };
}

async function waitFor(condition: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await sleep(5);
  }
}

function metricValue(metrics: string, name: string): number {
  const line = metrics.split('\n').find((candidate) => candidate.startsWith(`${name} `));
  if (line === undefined) throw new Error(`metric ${name} missing`);
  return Number(line.slice(name.length + 1));
}

async function slotsOf(engine: MockEngine): Promise<SlotView[]> {
  return (await getJson<SlotView[]>(engine, '/slots')).body;
}

describe('mock llama-server', () => {
  test('ORCH-3002: /health answers 503 "Loading model" while loadDelayMs passes, then 200 ok', async () => {
    // Long enough that the two requests below land inside it even on a loaded machine.
    const engine = await start({ loadDelayMs: 1_500 });
    const loading = await getJson<{ error: { code: number; message: string; type: string } }>(engine, '/health');
    expect(loading.status).toBe(503);
    expect(loading.body.error).toEqual({ code: 503, message: 'Loading model', type: 'unavailable_error' });
    expect((await get(engine, '/props')).status).toBe(503);
    expect(engine.stats().ready).toBe(false);
    await waitFor(async () => (await get(engine, '/health')).status === 200, 10_000);
    expect((await getJson<unknown>(engine, '/health')).body).toEqual({ status: 'ok' });
    expect(engine.stats().ready).toBe(true);
  });

  test('ORCH-3032: /props reports total_slots, a clearly-mock build_info, n_ctx and model_path', async () => {
    const engine = await start({ slots: 3, contextSize: 512, modelPath: '/models/x.gguf' });
    const props = await getJson<{
      total_slots: number;
      build_info: string;
      model_path: string;
      default_generation_settings: { n_ctx: number };
    }>(engine, '/props');
    expect(props.status).toBe(200);
    expect(props.body.total_slots).toBe(3);
    expect(props.body.build_info).toBe(MOCK_BUILD_INFO);
    // Real builds report "b<number>-<commit>"; the mock must never pass for one.
    expect(props.body.build_info).toMatch(/^mock-/);
    expect(props.body.default_generation_settings.n_ctx).toBe(512);
    expect(props.body.model_path).toBe('/models/x.gguf');
  });

  test("ORCH-3054: streams llama-server's SSE shape: partial chunks, then a final chunk with stop_type and timings", async () => {
    const engine = await start({ ttftMs: 0, interTokenMs: 1 });
    const chunks = await streamCompletion(engine, { prompt: 'Say hello', n_predict: 5, seed: 42, return_tokens: true });
    expect(chunks).toHaveLength(6);
    chunks.slice(0, 5).forEach((chunk, at) => {
      expect(chunk).toMatchObject({ index: 0, stop: false, id_slot: -1, tokens_predicted: at + 1, tokens_evaluated: 3 });
      expect(chunk.content.length).toBeGreaterThan(0);
      expect(chunk.tokens).toHaveLength(1);
    });
    const final = chunks[5];
    expect(final).toMatchObject({
      content: '',
      stop: true,
      stop_type: 'limit',
      tokens_predicted: 5,
      tokens_evaluated: 3,
      generation_settings: { seed: 42, n_predict: 5 },
      timings: { prompt_n: 3, predicted_n: 5 },
    });
    expect(final?.timings?.predicted_ms).toBeGreaterThanOrEqual(0);
    expect(final?.timings?.prompt_ms).toBeGreaterThanOrEqual(0);
  });

  test('the mock\'s seeded text is byte-identical on any slot and for a non-streamed request; another seed or prompt differs', async () => {
    const engine = await start({ slots: 2, ttftMs: 0, interTokenMs: 0 });
    const base = { prompt: 'The quick brown fox', n_predict: 24 };
    const onSlot0 = streamedText(await streamCompletion(engine, { ...base, seed: 1234, id_slot: 0 }));
    const onSlot1 = streamedText(await streamCompletion(engine, { ...base, seed: 1234, id_slot: 1 }));
    const nonStreamed = await completeJson(engine, { ...base, seed: 1234 });
    expect(onSlot0.length).toBeGreaterThan(0);
    expect(Buffer.from(onSlot1)).toEqual(Buffer.from(onSlot0));
    expect(nonStreamed.content).toBe(onSlot0);
    expect(nonStreamed.stop_type).toBe('limit');
    const otherSeed = streamedText(await streamCompletion(engine, { ...base, seed: 1235 }));
    const otherPrompt = streamedText(await streamCompletion(engine, { ...base, prompt: 'The quick brown cat', seed: 1234 }));
    expect(otherSeed).not.toBe(onSlot0);
    expect(otherPrompt).not.toBe(onSlot0);
  });

  test('n_predict bounds the output: absent means defaultNPredict, -1 runs until the context is full', async () => {
    const engine = await start({ ttftMs: 0, interTokenMs: 0, contextSize: 40, defaultNPredict: 7 });
    expect((await completeJson(engine, { prompt: 'hi', seed: 1 })).tokens_predicted).toBe(7);
    const unlimited = await completeJson(engine, { prompt: 'a b c', seed: 1, n_predict: -1 });
    expect(unlimited).toMatchObject({ tokens_evaluated: 4, tokens_predicted: 36, stop_type: 'limit' });
    const none = await streamCompletion(engine, { prompt: 'a', seed: 1, n_predict: 0 });
    expect(none).toHaveLength(1);
    expect(none[0]).toMatchObject({ stop: true, tokens_predicted: 0, stop_type: 'limit' });
  });

  test('with emitEos, a completion stops at a seed-derived EOS; ignore_eos runs to the limit', async () => {
    const engine = await start({ ttftMs: 0, interTokenMs: 0, emitEos: true });
    const stopped = await completeJson(engine, { prompt: 'story', seed: 9, n_predict: 200 });
    expect(stopped.stop_type).toBe('eos');
    expect(stopped.tokens_predicted).toBeGreaterThanOrEqual(9);
    expect(stopped.tokens_predicted).toBeLessThanOrEqual(64);
    const again = await completeJson(engine, { prompt: 'story', seed: 9, n_predict: 200 });
    expect(again.content).toBe(stopped.content);
    const ignored = await completeJson(engine, { prompt: 'story', seed: 9, n_predict: 200, ignore_eos: true });
    expect(ignored).toMatchObject({ stop_type: 'limit', tokens_predicted: 200 });
    expect(ignored.content.startsWith(stopped.content)).toBe(true);
  });

  test('ORCH-3019: a request beyond the slot count waits, counted as deferred, and runs when the slot frees', async () => {
    const engine = await start({ slots: 1, ttftMs: 5, interTokenMs: 10 });
    const first = streamCompletion(engine, { prompt: 'first', seed: 1, n_predict: 10 }).then((chunks) => ({ chunks, at: Date.now() }));
    await waitFor(async () => (await slotsOf(engine))[0]?.is_processing === true, 2_000);
    const secondStarted = Date.now();
    const second = streamCompletion(engine, { prompt: 'second', seed: 2, n_predict: 3 }).then((chunks) => ({ chunks, at: Date.now() }));
    await waitFor(async () => metricValue((await get(engine, '/metrics')).text, 'llamacpp:requests_deferred') === 1, 2_000);
    const metrics = (await get(engine, '/metrics')).text;
    expect(metricValue(metrics, 'llamacpp:requests_processing')).toBe(1);
    expect(engine.stats()).toMatchObject({ requestsDeferred: 1, requestsProcessing: 1 });
    const [firstDone, secondDone] = await Promise.all([first, second]);
    expect(firstDone.chunks.at(-1)?.stop_type).toBe('limit');
    expect(secondDone.chunks.at(-1)?.tokens_predicted).toBe(3);
    // The deferred request only ran after the first had finished with the slot.
    expect(secondDone.at).toBeGreaterThanOrEqual(firstDone.at);
    expect(secondDone.at - secondStarted).toBeGreaterThanOrEqual(30);
    expect(engine.stats()).toMatchObject({ deferredTotal: 1, requestsDeferred: 0, requestsProcessing: 0, completionsFinished: 2 });
  });

  test('ORCH-3017: closing the connection stops generation at once and frees the slot', async () => {
    const engine = await start({ slots: 1, ttftMs: 0, interTokenMs: 10 });
    const controller = new AbortController();
    controllers.push(controller);
    const response = await post(engine, { prompt: 'long', seed: 3, n_predict: 10_000, stream: true }, controller.signal);
    response.body.on('error', () => undefined);
    const reader = response.body[Symbol.asyncIterator]();
    await reader.next();
    const busy = await slotsOf(engine);
    expect(busy[0]).toMatchObject({ id: 0, is_processing: true, params: { seed: 3 } });
    controller.abort();
    await waitFor(async () => (await slotsOf(engine))[0]?.is_processing === false, 500);
    const decodedAtStop = engine.stats().tokensPredictedTotal;
    await sleep(60);
    expect(engine.stats().tokensPredictedTotal).toBe(decodedAtStop);
    expect(decodedAtStop).toBeLessThan(100);
    expect(engine.stats()).toMatchObject({ completionsCancelled: 1, completionsFinished: 0, requestsProcessing: 0 });
    // The slot really is free: the next request runs on it.
    const next = await streamCompletion(engine, { prompt: 'next', seed: 4, n_predict: 2, id_slot: 0 });
    expect(next.at(-1)?.tokens_predicted).toBe(2);
  });

  test('ORCH-3017: a deferred request whose client disconnects leaves the queue without ever running', async () => {
    const engine = await start({ slots: 1, ttftMs: 0, interTokenMs: 10 });
    const running = new AbortController();
    const waiting = new AbortController();
    controllers.push(running, waiting);
    const first = await post(engine, { prompt: 'a', seed: 1, n_predict: 10_000, stream: true }, running.signal);
    first.body.on('error', () => undefined);
    const second = await post(engine, { prompt: 'b', seed: 2, n_predict: 10_000, stream: true }, waiting.signal);
    second.body.on('error', () => undefined);
    expect(engine.stats().requestsDeferred).toBe(1);
    waiting.abort();
    await waitFor(async () => metricValue((await get(engine, '/metrics')).text, 'llamacpp:requests_deferred') === 0, 500);
    running.abort();
    await waitFor(async () => (await slotsOf(engine))[0]?.is_processing === false, 500);
    expect(engine.stats()).toMatchObject({ deferredTotal: 1, completionsCancelled: 2, requestsDeferred: 0, requestsProcessing: 0 });
    const slot = (await slotsOf(engine))[0];
    expect(slot?.id_task).toBe(0); // the second request never got a task on the slot
  });

  test('/slots reports id, id_task, n_ctx, is_processing, params.seed and next_token.n_decoded', async () => {
    const engine = await start({ slots: 2, contextSize: 256, ttftMs: 0, interTokenMs: 0 });
    await completeJson(engine, { prompt: 'x', seed: 77, n_predict: 5, id_slot: 1 });
    const slots = await slotsOf(engine);
    expect(slots).toHaveLength(2);
    expect(slots[0]).toMatchObject({ id: 0, id_task: -1, n_ctx: 256, is_processing: false });
    expect(slots[1]).toMatchObject({ id: 1, id_task: 0, n_ctx: 256, is_processing: false, params: { seed: 77 }, next_token: { n_decoded: 5 } });
  });

  test('/metrics is Prometheus text with llama.cpp counter and gauge names', async () => {
    const engine = await start({ ttftMs: 0, interTokenMs: 0 });
    await completeJson(engine, { prompt: 'hello world', seed: 1, n_predict: 4 });
    await streamCompletion(engine, { prompt: 'again', seed: 1, n_predict: 2 });
    const metrics = await get(engine, '/metrics');
    expect(metrics.status).toBe(200);
    expect(metrics.text).toContain('# TYPE llamacpp:prompt_tokens_total counter');
    expect(metrics.text).toContain('# TYPE llamacpp:requests_deferred gauge');
    expect(metricValue(metrics.text, 'llamacpp:prompt_tokens_total')).toBe(3 + 2);
    expect(metricValue(metrics.text, 'llamacpp:tokens_predicted_total')).toBe(6);
    expect(metricValue(metrics.text, 'llamacpp:requests_processing')).toBe(0);
    expect(metricValue(metrics.text, 'llamacpp:requests_deferred')).toBe(0);
  });

  test('refuses with 400 a prompt that fills the context, a malformed body and an unknown slot', async () => {
    const engine = await start({ contextSize: 4 });
    const tooLong = await post(engine, { prompt: 'one two three four', n_predict: 1, stream: true });
    expect(tooLong.statusCode).toBe(400);
    expect(await tooLong.body.json()).toMatchObject({ error: { code: 400, type: 'exceed_context_size_error', n_ctx: 4 } });
    const noPrompt = await post(engine, { n_predict: 1 });
    expect(noPrompt.statusCode).toBe(400);
    expect(await noPrompt.body.json()).toMatchObject({ error: { type: 'invalid_request_error' } });
    const badSlot = await post(engine, { prompt: 'x', id_slot: 5 });
    expect(badSlot.statusCode).toBe(400);
    await badSlot.body.dump();
    expect(engine.stats().completionsAccepted).toBe(0);
  });

  test('paces tokens: the first after ttftMs, the rest every interTokenMs', async () => {
    const engine = await start({ ttftMs: 30, interTokenMs: 5 });
    const startedAt = performance.now();
    const response = await post(engine, { prompt: 'pace', seed: 1, n_predict: 20, stream: true });
    let firstAt = 0;
    let text = '';
    for await (const piece of response.body) {
      if (firstAt === 0) firstAt = performance.now();
      text += (piece as Buffer).toString('utf8');
    }
    const endedAt = performance.now();
    expect(parseSse(text).at(-1)?.tokens_predicted).toBe(20);
    expect(firstAt - startedAt).toBeGreaterThanOrEqual(28);
    expect(endedAt - firstAt).toBeGreaterThanOrEqual(19 * 5 - 3);
    expect(endedAt - startedAt).toBeLessThan(2_000);
  });

  test('ORCH-3022: cache_prompt reuses a slot\'s cached prefix (timings.cache_n); POST /slots/<id>?action=erase drops it', async () => {
    const engine = await start({ slots: 1 });
    const adapter = createLlamaCppAdapter({ baseUrl: engine.url });
    const run = async (prompt: string, cachePrompt: boolean) => {
      const stream = adapter.complete({ prompt, maxTokens: 3, seed: 1, samplerProfile: 'v1', slotId: 0, cachePrompt }, new AbortController().signal);
      let text = '';
      for (let step = await stream.next(); ; step = await stream.next()) {
        if (step.done) return { text, summary: step.value };
        text += step.value.text;
      }
    };
    try {
      const first = await run('Hello there', true);
      expect(first.summary.promptTokensFromCache).toBe(0);
      const warm = await run(`Hello there${first.text} again`, true);
      expect(warm.summary.promptTokensFromCache).toBeGreaterThan(0);
      expect(warm.summary.tokensCached).toBeGreaterThan(first.summary.tokensCached ?? 0);
      // Off, as strict determinism asks: nothing is reused even though the prefix matches.
      expect((await run(`Hello there${first.text} again${warm.text}`, false)).summary.promptTokensFromCache).toBe(0);
      await adapter.eraseSlot(0);
      const prompt = 'Erased';
      await run(prompt, true);
      await adapter.eraseSlot(0);
      expect((await run(`${prompt} more`, true)).summary.promptTokensFromCache).toBe(0);
    } finally {
      await adapter.close();
    }
  });

  test("/v1/completions streams llama-server's text_completion chunks, then finish_reason, usage and timings, then [DONE]", async () => {
    const engine = await start({ ttftMs: 0, interTokenMs: 1, modelPath: '/models/tiny-q4.gguf' });
    const { chunks, raw } = await streamOpenAi<TextCompletionChunk>(engine, '/v1/completions', {
      model: 'whatever-the-client-says',
      prompt: 'Say hello',
      max_tokens: 5,
      seed: 42,
      stop: null, // OpenAI clients send nulls; llama-server ignores them
    });
    expect(raw.at(-1)).toBe('data: [DONE]');
    expect(chunks).toHaveLength(6);
    const id = chunks[0]?.id;
    expect(id).toMatch(/^chatcmpl-[0-9A-Za-z]{32}$/);
    for (const chunk of chunks) {
      // llama-server answers with its own model name (the file's, or --alias), whatever the request named.
      expect(chunk).toMatchObject({ object: 'text_completion', id, model: 'tiny-q4.gguf', system_fingerprint: MOCK_BUILD_INFO });
      expect(chunk.created).toBeGreaterThan(1_600_000_000);
    }
    chunks.slice(0, 5).forEach((chunk) => {
      expect(Object.keys(chunk)).toEqual(['choices', 'created', 'model', 'system_fingerprint', 'object', 'id']);
      expect(chunk.choices).toEqual([{ text: expect.any(String), index: 0, logprobs: null, finish_reason: null }]);
    });
    const final = chunks[5];
    expect(Object.keys(final ?? {})).toEqual(['choices', 'created', 'model', 'system_fingerprint', 'object', 'usage', 'id', 'timings']);
    expect(final?.choices).toEqual([{ text: '', index: 0, logprobs: null, finish_reason: 'length' }]);
    expect(final?.usage).toEqual({ completion_tokens: 5, prompt_tokens: 3, total_tokens: 8, prompt_tokens_details: { cached_tokens: 0 } });
    expect(final?.timings).toMatchObject({ prompt_n: 3, predicted_n: 5 });
    expect(engine.stats().lastCompletionRequest).toMatchObject({ model: 'whatever-the-client-says', max_tokens: 5 });
    // The same generation as the native route: same seed and prompt, same text.
    const native = streamedText(await streamCompletion(engine, { prompt: 'Say hello', n_predict: 5, seed: 42 }));
    expect(chunks.map((chunk) => chunk.choices[0]?.text ?? '').join('')).toBe(native);
  });

  test('/v1/completions without stream answers one text_completion; n_predict beats max_tokens; EOS finishes with "stop"', async () => {
    const engine = await start({ ttftMs: 0, interTokenMs: 0, emitEos: true });
    const response = await postTo(engine, '/v1/completions', { prompt: ['story'], max_tokens: 200, seed: 9 });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toContain('application/json');
    const body = (await response.body.json()) as TextCompletionChunk;
    const native = await completeJson(engine, { prompt: 'story', seed: 9, n_predict: 200 });
    expect(native.stop_type).toBe('eos');
    expect(body).toMatchObject({ object: 'text_completion', model: 'mock-llamacpp-tiny.gguf' });
    expect(body.choices).toEqual([{ text: native.content, index: 0, logprobs: null, finish_reason: 'stop' }]);
    expect(body.usage).toMatchObject({ completion_tokens: native.tokens_predicted, prompt_tokens: 2 });
    const limited = (await (await postTo(engine, '/v1/completions', { prompt: 'story', max_tokens: 200, n_predict: 3, seed: 9 })).body.json()) as TextCompletionChunk;
    expect(limited.choices[0]?.finish_reason).toBe('length');
    expect(limited.usage?.completion_tokens).toBe(3);
  });

  test('/v1/chat/completions streams a role delta, content deltas, a finish chunk, the include_usage chunk, then [DONE]', async () => {
    const engine = await start({ ttftMs: 0, interTokenMs: 1, modelAlias: 'mock-chat' });
    const messages = [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: [{ type: 'text', text: 'Say hello' }] },
    ];
    const { chunks } = await streamOpenAi<ChatChunk>(engine, '/v1/chat/completions', {
      model: 'mock-chat',
      messages,
      max_completion_tokens: 4,
      seed: 7,
      stream_options: { include_usage: true },
    });
    // role, 4 content deltas, finish, usage
    expect(chunks).toHaveLength(7);
    const id = chunks[0]?.id;
    expect(id).toMatch(/^chatcmpl-[0-9A-Za-z]{32}$/);
    chunks.forEach((chunk) => expect(chunk).toMatchObject({ object: 'chat.completion.chunk', id, model: 'mock-chat', system_fingerprint: MOCK_BUILD_INFO }));
    expect(Object.keys(chunks[0] ?? {})).toEqual(['choices', 'created', 'id', 'model', 'system_fingerprint', 'object']);
    expect(chunks[0]?.choices).toEqual([{ finish_reason: null, index: 0, delta: { role: 'assistant', content: null } }]);
    const deltas = chunks.slice(1, 5).map((chunk) => {
      expect(chunk.choices[0]).toMatchObject({ finish_reason: null, index: 0 });
      expect(Object.keys(chunk.choices[0]?.delta ?? {})).toEqual(['content']);
      return chunk.choices[0]?.delta.content ?? '';
    });
    expect(chunks[5]?.choices).toEqual([{ finish_reason: 'length', index: 0, delta: {} }]);
    expect(chunks[5]?.timings).toBeUndefined();
    const usageChunk = chunks[6];
    expect(usageChunk?.choices).toEqual([]);
    expect(usageChunk?.usage).toMatchObject({ completion_tokens: 4, total_tokens: 4 + (usageChunk?.usage?.prompt_tokens ?? 0) });
    expect(usageChunk?.timings).toMatchObject({ predicted_n: 4 });
    // The chat prompt is the ChatML rendering of the messages; /completion gives the same tokens for it.
    const prompt = applyMockChatTemplate([
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Say hello' },
    ]);
    const native = await completeJson(engine, { prompt, n_predict: 4, seed: 7 });
    expect(deltas.join('')).toBe(native.content);
    expect(usageChunk?.usage?.prompt_tokens).toBe(native.tokens_evaluated);

    // Without include_usage the finish chunk is the last one and carries the timings.
    const plain = await streamOpenAi<ChatChunk>(engine, '/v1/chat/completions', { messages, max_tokens: 2, seed: 7 });
    expect(plain.chunks).toHaveLength(4);
    expect(plain.chunks.at(-1)?.choices).toEqual([{ finish_reason: 'length', index: 0, delta: {} }]);
    expect(plain.chunks.at(-1)?.timings).toMatchObject({ predicted_n: 2 });
    expect(plain.chunks.some((chunk) => chunk.usage !== undefined)).toBe(false);
  });

  test('/v1/chat/completions without stream answers one chat.completion with the assistant message', async () => {
    const engine = await start({ ttftMs: 0, interTokenMs: 0 });
    const messages = [{ role: 'user', content: 'Hi' }];
    const response = await postTo(engine, '/v1/chat/completions', { messages, max_tokens: 6, seed: 3 });
    expect(response.statusCode).toBe(200);
    const body = (await response.body.json()) as {
      choices: { finish_reason: string; index: number; message: { role: string; content: string } }[];
      object: string;
      usage: OpenAiUsage;
      timings: OpenAiTimings;
    };
    expect(Object.keys(body)).toEqual(['choices', 'created', 'model', 'system_fingerprint', 'object', 'usage', 'id', 'timings']);
    const native = await completeJson(engine, { prompt: applyMockChatTemplate(messages), n_predict: 6, seed: 3 });
    expect(body.object).toBe('chat.completion');
    expect(body.choices).toEqual([{ finish_reason: 'length', index: 0, message: { role: 'assistant', content: native.content } }]);
    expect(body.usage).toEqual({ completion_tokens: 6, prompt_tokens: native.tokens_evaluated, total_tokens: 6 + native.tokens_evaluated, prompt_tokens_details: { cached_tokens: 0 } });
    expect(body.timings).toMatchObject({ predicted_n: 6 });
  });

  test('/v1/models lists the one model (meta null while loading); the OpenAI routes 503 until loaded, then validate like /completion', async () => {
    const engine = await start({ loadDelayMs: 1_500, contextSize: 8, modelAlias: 'tiny' });
    const loading = await getJson<{ object: string; data: { id: string; meta: unknown }[] }>(engine, '/v1/models');
    expect(loading.status).toBe(200);
    expect(loading.body.data[0]).toMatchObject({ id: 'tiny', meta: null });
    const early = await postTo(engine, '/v1/completions', { prompt: 'x' });
    expect(early.statusCode).toBe(503);
    expect(await early.body.json()).toEqual({ error: { code: 503, message: 'Loading model', type: 'unavailable_error' } });
    await waitFor(async () => (await get(engine, '/health')).status === 200, 10_000);
    const models = await getJson<{
      object: string;
      data: { id: string; aliases: string[]; object: string; owned_by: string; created: number; meta: { n_vocab: number; n_ctx_train: number } }[];
      models: { name: string; model: string; details: { format: string } }[];
    }>(engine, '/v1/models');
    expect(models.body.object).toBe('list');
    expect(models.body.data).toHaveLength(1);
    expect(models.body.data[0]).toMatchObject({ id: 'tiny', aliases: ['tiny'], object: 'model', owned_by: 'llamacpp', meta: { n_ctx_train: 8 } });
    expect(models.body.data[0]?.meta.n_vocab).toBeGreaterThan(100);
    expect(models.body.models[0]).toMatchObject({ name: 'tiny', model: 'tiny', details: { format: 'gguf' } });
    const tooLong = await postTo(engine, '/v1/completions', { prompt: 'one two three four five six seven eight', max_tokens: 1 });
    expect(tooLong.statusCode).toBe(400);
    expect(await tooLong.body.json()).toMatchObject({ error: { code: 400, type: 'exceed_context_size_error', n_ctx: 8 } });
    const noMessages = await postTo(engine, '/v1/chat/completions', { model: 'tiny', max_tokens: 1 });
    expect(noMessages.statusCode).toBe(400);
    expect(await noMessages.body.json()).toMatchObject({ error: { code: 400, type: 'invalid_request_error' } });
    const twoPrompts = await postTo(engine, '/v1/completions', { prompt: ['a', 'b'] });
    expect(twoPrompts.statusCode).toBe(400);
    await twoPrompts.body.dump();
    expect(engine.stats().completionsAccepted).toBe(0);
  });

  test('CLI: prints one "listening" JSON line, warns on stderr that it is a mock, exits 0 on SIGTERM', async () => {
    // Runs the TypeScript entry through @swc/core (what jest uses), so the test needs no build.
    const main = join(__dirname, '../../gpu-workers/engines/mock-llamacpp/mock-engine-main.ts');
    const hook =
      "require.extensions['.ts'] = (m, file) => m._compile(require('@swc/core').transformFileSync(file, " +
      "{ jsc: { target: 'es2022', parser: { syntax: 'typescript' } }, module: { type: 'commonjs' } }).code, file);" +
      `require(${JSON.stringify(main)});`;
    const child = spawn(process.execPath, ['-e', hook, '--', '--port', '0', '--slots', '2', '--ttft-ms', '0', '--inter-token-ms', '1'], {
      cwd: join(__dirname, '../..'),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (data: Buffer) => (stderr += data.toString('utf8')));
    const exited = once(child, 'exit');
    try {
      const lines = createInterface({ input: child.stdout });
      const [firstLine] = (await Promise.race([
        once(lines, 'line'),
        exited.then(() => Promise.reject(new Error(`mock engine exited before listening: ${stderr}`))),
      ])) as [string];
      const listening = JSON.parse(firstLine) as { event: string; url: string };
      expect(listening.event).toBe('listening');
      expect(listening.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      const props = await request(`${listening.url}/props`, { dispatcher: agent });
      expect(await props.body.json()).toMatchObject({ total_slots: 2, build_info: MOCK_BUILD_INFO });
      expect(stderr).toContain('MOCK llama.cpp engine');
    } finally {
      child.kill('SIGTERM');
    }
    const [code] = (await exited) as [number | null];
    expect(code).toBe(0);
  });
});
