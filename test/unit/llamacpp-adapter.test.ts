import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent } from 'undici';
import { collect, failureCode } from '../support/adapter-results';
import { hasErrorCode } from '../../core/errors';
import type { CompletionRequest } from '../../gpu-workers/engines/engine-adapter';
import { buildCompletionBody } from '../../gpu-workers/engines/llamacpp/completion-request-body';
import { createLlamaCppAdapter } from '../../gpu-workers/engines/llamacpp/llamacpp-adapter';
import type { LlamaCppAdapter } from '../../gpu-workers/engines/llamacpp/llamacpp-adapter';
import { SAMPLER_PROFILES } from '../../gpu-workers/engines/llamacpp/sampler-profiles';
import { SseDecoder } from '../../gpu-workers/engines/llamacpp/sse-events';
import type { SseEvent } from '../../gpu-workers/engines/llamacpp/sse-events';
import { MOCK_BUILD_INFO, startMockEngine } from '../../gpu-workers/engines/mock-llamacpp/mock-engine';
import type { MockEngine, MockEngineOptions } from '../../gpu-workers/engines/mock-llamacpp/mock-engine';

const FIXTURES = join(__dirname, '__fixtures__', 'llamacpp');

function fixture(name: string): Buffer {
  return readFileSync(join(FIXTURES, name));
}

// ---- teardown bookkeeping: every server, agent, adapter and stream opened here is closed ----

const agent = new Agent({ keepAliveTimeout: 10, keepAliveMaxTimeout: 10 });
const closers: (() => Promise<void>)[] = [];
const controllers: AbortController[] = [];

afterEach(async () => {
  for (const controller of controllers.splice(0)) controller.abort();
  for (const close of closers.splice(0).reverse()) await close();
});

afterAll(async () => {
  await agent.close();
});

function adapterFor(baseUrl: string, options: { ownAgent?: boolean } = {}): LlamaCppAdapter {
  const adapter = createLlamaCppAdapter({ baseUrl, dispatcher: options.ownAgent === true ? undefined : agent });
  closers.push(() => adapter.close());
  return adapter;
}

async function mockEngine(options: MockEngineOptions): Promise<MockEngine> {
  const engine = await startMockEngine(options);
  closers.push(() => engine.close());
  return engine;
}

function newController(): AbortController {
  const controller = new AbortController();
  controllers.push(controller);
  return controller;
}

// ---- a tiny server that replays recorded llama-server answers ----

interface Reply {
  readonly status?: number;
  readonly contentType?: string;
  /** The body, written as it is or in `pieceBytes`-sized writes `pieceDelayMs` apart. */
  readonly body: Buffer | string;
  readonly pieceBytes?: number;
  readonly pieceDelayMs?: number;
}

interface ReplayServer {
  readonly url: string;
  readonly requests: { method: string; path: string; body: string }[];
}

async function replayServer(routes: Record<string, Reply>): Promise<ReplayServer> {
  const requests: ReplayServer['requests'] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const path = req.url ?? '/';
      requests.push({ method: req.method ?? '', path, body: Buffer.concat(chunks).toString('utf8') });
      const reply = routes[`${req.method ?? ''} ${path}`];
      if (reply === undefined) {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(reply.status ?? 200, { 'content-type': reply.contentType ?? 'application/json' });
      const body = Buffer.from(reply.body);
      const pieceBytes = reply.pieceBytes ?? body.length;
      void (async () => {
        for (let offset = 0; offset < body.length && !res.destroyed; offset += pieceBytes) {
          res.write(body.subarray(offset, offset + pieceBytes));
          if (reply.pieceDelayMs !== undefined) await sleep(reply.pieceDelayMs);
        }
        res.end();
      })();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(
    () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  );
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests };
}

async function sseServer(body: Buffer | string, extra: Partial<Reply> = {}): Promise<ReplayServer> {
  return replayServer({ 'POST /completion': { contentType: 'text/event-stream', body, ...extra } });
}

// ---- helpers over the adapter's generator ----

const REQUEST: CompletionRequest = { prompt: 'Say hello', maxTokens: 8, seed: 42, samplerProfile: 'v1' };

async function completeAll(adapter: LlamaCppAdapter, request: CompletionRequest = REQUEST) {
  return collect(adapter.complete(request, newController().signal));
}

/** Resolves to the error's `code` (or name), failing the test when the promise resolves. */
async function failure(promise: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await promise;
  } catch (error) {
    if (hasErrorCode(error)) return { code: error.code, message: error.message };
    throw error;
  }
  throw new Error('expected a failure');
}

function decodeAll(bytes: Buffer, pieceBytes: number): SseEvent[] {
  const decoder = new SseDecoder();
  const events: SseEvent[] = [];
  for (let offset = 0; offset < bytes.length; offset += pieceBytes) {
    events.push(...decoder.push(Uint8Array.from(bytes.subarray(offset, offset + pieceBytes))));
  }
  events.push(...decoder.end());
  return events;
}

function eventsAsText(events: readonly SseEvent[]): string[] {
  return events.map((event) => `${event.type}|${Buffer.from(event.data).toString('utf8')}`);
}

describe('llama.cpp adapter against the mock engine', () => {
  test('ORCH-3054: streams a completion end to end, tokens numbered from 0, with the summary', async () => {
    const engine = await mockEngine({ ttftMs: 0, interTokenMs: 1 });
    const adapter = adapterFor(engine.url);
    const { tokens, summary } = await completeAll(adapter, { ...REQUEST, maxTokens: 12 });
    expect(tokens.map((token) => token.index)).toEqual([...Array(12).keys()]);
    expect(tokens.every((token) => token.text.length > 0)).toBe(true);
    expect(summary).toMatchObject({ tokensOut: 12, tokensIn: 3, stopReason: 'limit', slotId: 0 });
    expect(summary.decodeMs).toBeGreaterThanOrEqual(0);
  });

  test('OC-ADAPT-5010: sampler profile v1 maps to explicit parameters, sent with every completion', async () => {
    expect(SAMPLER_PROFILES.v1).toEqual({
      temperature: 0.8,
      top_k: 40,
      top_p: 0.95,
      min_p: 0.05,
      repeat_penalty: 1.0,
      samplers: ['top_k', 'top_p', 'min_p', 'temperature'],
    });
    expect(Object.isFrozen(SAMPLER_PROFILES.v1)).toBe(true);
    const engine = await mockEngine({ slots: 2, ttftMs: 0, interTokenMs: 0 });
    const adapter = adapterFor(engine.url);
    await completeAll(adapter, { prompt: 'p', maxTokens: 3, seed: 7, samplerProfile: 'v1' });
    expect(engine.stats().lastCompletionRequest).toEqual({
      prompt: 'p',
      n_predict: 3,
      seed: 7,
      stream: true,
      cache_prompt: false,
      id_slot: -1,
      return_tokens: true,
      temperature: 0.8,
      top_k: 40,
      top_p: 0.95,
      min_p: 0.05,
      repeat_penalty: 1.0,
      samplers: ['top_k', 'top_p', 'min_p', 'temperature'],
    });
    const pinned = await completeAll(adapter, { prompt: 'p', maxTokens: 3, seed: 7, samplerProfile: 'v1', slotId: 1 });
    expect(engine.stats().lastCompletionRequest).toMatchObject({ id_slot: 1 });
    expect(pinned.summary.slotId).toBe(1);
    expect(buildCompletionBody({ prompt: 'q', maxTokens: 1, seed: 1, samplerProfile: 'v1', slotId: 0 }, 'q')).toMatchObject({ id_slot: 0, samplers: SAMPLER_PROFILES.v1.samplers });
  });

  test('the seed reaches the engine: the same seed and prompt stream identical tokens from the mock; another seed differs', async () => {
    const engine = await mockEngine({ ttftMs: 0, interTokenMs: 0 });
    const adapter = adapterFor(engine.url);
    const first = await completeAll(adapter, { ...REQUEST, maxTokens: 16 });
    const second = await completeAll(adapter, { ...REQUEST, maxTokens: 16 });
    const otherSeed = await completeAll(adapter, { ...REQUEST, maxTokens: 16, seed: 43 });
    expect(second.tokens).toEqual(first.tokens);
    expect(otherSeed.tokens.map((token) => token.text).join('')).not.toBe(first.tokens.map((token) => token.text).join(''));
  });

  test('ORCH-3032 / OC-ADAPT-5011: properties() maps /props (slots, build_info, n_ctx, model path)', async () => {
    const engine = await mockEngine({ slots: 4, contextSize: 2048, modelPath: '/models/tiny.gguf' });
    const adapter = adapterFor(engine.url);
    await expect(adapter.properties()).resolves.toEqual({
      totalSlots: 4,
      engineVersion: MOCK_BUILD_INFO,
      contextSize: 2048,
      modelPath: '/models/tiny.gguf',
    });
  });

  test('ORCH-3002: health() is ready on 200, live but not ready on 503 loading, not live when unreachable', async () => {
    const engine = await mockEngine({ loadDelayMs: 200 });
    const adapter = adapterFor(engine.url);
    const loading = await adapter.health();
    expect(loading).toMatchObject({ live: true, ready: false });
    expect(loading.detail).toContain('Loading model');
    await sleep(250);
    await expect(adapter.health()).resolves.toEqual({ live: true, ready: true });
    await engine.close();
    const gone = await adapter.health();
    expect(gone).toMatchObject({ live: false, ready: false });
  });

  test('ORCH-3019: slots() maps /slots while a completion holds slot 0, with each slot\'s context and the tokens its KV holds (issue 13)', async () => {
    const engine = await mockEngine({ slots: 2, ttftMs: 0, interTokenMs: 10 });
    const adapter = adapterFor(engine.url);
    expect(await adapter.slots()).toEqual([
      { id: 0, isProcessing: false, contextTokens: 4096, heldTokens: 0 },
      { id: 1, isProcessing: false, contextTokens: 4096, heldTokens: 0 },
    ]);
    const stream = adapter.complete({ ...REQUEST, maxTokens: 1000, slotId: 0 }, newController().signal);
    await stream.next();
    const promptTokens = (await adapter.tokenize('Say hello')).length;
    expect(await adapter.slots()).toEqual([
      { id: 0, isProcessing: true, contextTokens: 4096, heldTokens: expect.any(Number) },
      { id: 1, isProcessing: false, contextTokens: 4096, heldTokens: 0 },
    ]);
    expect((await adapter.slots())[0]?.heldTokens).toBeGreaterThan(promptTokens);
    await stream.return(undefined as never);
  });

  test('ORCH-3017 / ORCH-3026: aborting mid-stream ends the generator with AbortError, no token after, and the slot frees', async () => {
    const engine = await mockEngine({ slots: 1, ttftMs: 0, interTokenMs: 5 });
    const adapter = adapterFor(engine.url);
    const controller = newController();
    const stream = adapter.complete({ ...REQUEST, maxTokens: 10_000, slotId: 0 }, controller.signal);
    for (let taken = 0; taken < 3; taken++) expect((await stream.next()).done).toBe(false);
    // Let more chunks pile up in the socket: none of them may surface after the abort.
    await sleep(30);
    controller.abort();
    await expect(failureCode(stream.next())).resolves.toBe('AbortError');
    await expect(stream.next()).resolves.toEqual({ done: true, value: undefined });
    await adapter.confirmStopped(0, 1_000);
    expect(engine.stats()).toMatchObject({ completionsCancelled: 1, requestsProcessing: 0 });
    const decoded = engine.stats().tokensPredictedTotal;
    await sleep(30);
    expect(engine.stats().tokensPredictedTotal).toBe(decoded);
  });

  test('ORCH-3017: a consumer that stops early (break) closes the socket too, and the slot frees', async () => {
    const engine = await mockEngine({ slots: 1, ttftMs: 0, interTokenMs: 5 });
    const adapter = adapterFor(engine.url, { ownAgent: true });
    let seen = 0;
    for await (const token of adapter.complete({ ...REQUEST, maxTokens: 10_000 }, newController().signal)) {
      expect(token.index).toBe(seen);
      if (++seen === 2) break;
    }
    await adapter.confirmStopped(undefined, 1_000);
    expect(engine.stats().completionsCancelled).toBe(1);
  });

  test('ORCH-3017: confirmStopped throws WORKER_RESET when the slot stays busy past the deadline', async () => {
    const engine = await mockEngine({ slots: 1, ttftMs: 0, interTokenMs: 5 });
    const adapter = adapterFor(engine.url);
    const stream = adapter.complete({ ...REQUEST, maxTokens: 10_000 }, newController().signal);
    await stream.next();
    const startedAt = Date.now();
    const error = await failure(adapter.confirmStopped(0, 100));
    expect(error.code).toBe('WORKER_RESET');
    expect(error.message).toContain('slot 0');
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(75);
    await expect(failureCode(adapter.confirmStopped(7, 100))).resolves.toBe('INTERNAL');
    await stream.return(undefined as never);
  });

  test('a 400 from the engine (context exceeded) throws INVALID_PARAMS', async () => {
    const engine = await mockEngine({ contextSize: 4 });
    const adapter = adapterFor(engine.url);
    const error = await failure(completeAll(adapter, { ...REQUEST, prompt: 'far too many words here' }));
    expect(error.code).toBe('INVALID_PARAMS');
    expect(error.message).toContain('exceed_context_size_error');
  });

  test('ORCH-3054: scrapeMetrics() returns the engine-native Prometheus text', async () => {
    const engine = await mockEngine({ ttftMs: 0, interTokenMs: 0 });
    const adapter = adapterFor(engine.url);
    await completeAll(adapter, { ...REQUEST, maxTokens: 4 });
    const metrics = await adapter.scrapeMetrics();
    expect(metrics).toContain('llamacpp:tokens_predicted_total 4');
    expect(metrics).toContain('llamacpp:requests_deferred 0');
  });
});

describe('llama.cpp adapter against recorded transcripts', () => {
  test('ORCH-3054: newer final chunk (stop_type, timings) gives tokens and summary', async () => {
    const server = await sseServer(fixture('stop-type-final.sse.txt'));
    const { tokens, summary } = await completeAll(adapterFor(server.url));
    expect(tokens).toEqual([
      { text: ' Hello', index: 0, slotId: 0 },
      { text: ' wörld', index: 1, slotId: 0 },
      { text: '!', index: 2, slotId: 0 },
    ]);
    expect(summary).toEqual({ tokensOut: 4, tokensIn: 5, stopReason: 'limit', decodeMs: 30.25, slotId: 0, tokensCached: 8, promptTokensFromCache: 0 });
    expect(JSON.parse(server.requests[0]?.body ?? '{}')).toMatchObject({ stream: true, cache_prompt: false, id_slot: -1 });
  });

  test('ORCH-3054: older final chunk (stopped_* booleans), `data:` without a space and `: ping` comments', async () => {
    const server = await sseServer(fixture('stopped-booleans-final.sse.txt'));
    const { tokens, summary } = await completeAll(adapterFor(server.url));
    expect(tokens.map((token) => token.text)).toEqual([' Once', ' upon']);
    expect(summary).toEqual({ tokensOut: 3, tokensIn: 7, stopReason: 'eos', decodeMs: 18.5, slotId: 1, tokensCached: 10, promptTokensFromCache: undefined });
  });

  test('CRLF line endings and a body delivered a few bytes at a time parse the same', async () => {
    const crlf = fixture('stop-type-final.sse.txt').toString('utf8').replaceAll('\n', '\r\n');
    const server = await sseServer(crlf, { pieceBytes: 7, pieceDelayMs: 1 });
    const { tokens, summary } = await completeAll(adapterFor(server.url));
    expect(tokens.map((token) => token.text)).toEqual([' Hello', ' wörld', '!']);
    expect(summary.stopReason).toBe('limit');
  });

  test('SSE parser: byte-at-a-time input (splitting "ö" and CR LF) yields the same events as whole input', () => {
    const lf = fixture('stopped-booleans-final.sse.txt');
    const crlf = Buffer.from(lf.toString('utf8').replaceAll('\n', '\r\n'));
    const cr = Buffer.from(lf.toString('utf8').replaceAll('\n', '\r'));
    const whole = eventsAsText(decodeAll(lf, lf.length));
    expect(whole).toHaveLength(3);
    expect(eventsAsText(decodeAll(lf, 1))).toEqual(whole);
    expect(eventsAsText(decodeAll(crlf, 1))).toEqual(whole);
    expect(eventsAsText(decodeAll(cr, 3))).toEqual(whole);
    const withUmlaut = fixture('stop-type-final.sse.txt');
    expect(eventsAsText(decodeAll(withUmlaut, 1))).toEqual(eventsAsText(decodeAll(withUmlaut, withUmlaut.length)));
    expect(eventsAsText(decodeAll(Buffer.from('event: error\ndata: a\ndata: b\n\nerror: {"x":1}\n\ndata: tail'), 2))).toEqual([
      'error|a\nb',
      'error|{"x":1}',
      'message|tail',
    ]);
  });

  test('ORCH-3058: a multi-byte character split across chunks is emitted whole, never as U+FFFD', async () => {
    const partial = (content: Buffer, tokens: number): Buffer =>
      Buffer.concat([
        Buffer.from('data: {"index":0,"content":"'),
        content,
        Buffer.from(`","tokens":[${tokens}],"stop":false,"id_slot":0,"tokens_predicted":${tokens},"tokens_evaluated":2}\n\n`),
      ]);
    const transcript = Buffer.concat([
      partial(Buffer.from([0x20, 0x63, 0x61, 0x66, 0xc3]), 1), // " caf" + first byte of "é"
      partial(Buffer.from([0xa9, 0x20, 0x6f, 0x6b]), 2), // second byte of "é" + " ok"
      partial(Buffer.from([0xf0, 0x9f]), 3), // first half of "😀": no complete character yet
      partial(Buffer.from([0x98, 0x80, 0x21]), 4), // second half + "!"
      partial(Buffer.from(' ünd', 'utf8'), 5), // well-formed chunks still pass straight through
      Buffer.from('data: {"content":"","stop":true,"id_slot":0,"tokens_predicted":5,"tokens_evaluated":2,"stop_type":"eos"}\n\n'),
    ]);
    const server = await sseServer(transcript, { pieceBytes: 5, pieceDelayMs: 1 });
    const { tokens, summary } = await completeAll(adapterFor(server.url));
    expect(tokens.map(({ text, index }) => ({ text, index }))).toEqual([
      { text: ' caf', index: 0 },
      { text: 'é ok', index: 1 },
      { text: '😀!', index: 2 },
      { text: ' ünd', index: 3 },
    ]);
    expect(tokens.some((token) => token.text.includes('\uFFFD'))).toBe(false);
    expect(summary).toMatchObject({ tokensOut: 5, stopReason: 'eos' });
  });

  test('an `error:` line (older builds) throws WORKER_RESET with the engine message', async () => {
    const server = await sseServer(fixture('error-field.sse.txt'));
    const stream = adapterFor(server.url).complete(REQUEST, newController().signal);
    expect(await stream.next()).toEqual({ done: false, value: { text: ' The', index: 0, slotId: 0 } });
    const error = await failure(stream.next());
    expect(error.code).toBe('WORKER_RESET');
    expect(error.message).toContain('Input prompt is too big');
  });

  test('an `event: error` with a data {"error":…} object throws WORKER_RESET', async () => {
    const server = await sseServer(fixture('event-error.sse.txt'));
    const error = await failure(completeAll(adapterFor(server.url)));
    expect(error).toMatchObject({ code: 'WORKER_RESET' });
    expect(error.message).toContain('failed to decode the batch');
  });

  test('a data {"error":{"code":400,…}} chunk (context exceeded mid-stream) throws INVALID_PARAMS', async () => {
    const server = await sseServer(fixture('data-error-context.sse.txt'));
    const error = await failure(completeAll(adapterFor(server.url)));
    expect(error.code).toBe('INVALID_PARAMS');
    expect(error.message).toContain('exceeds the available context size');
  });

  test('a stream that ends before the final chunk throws WORKER_RESET', async () => {
    const server = await sseServer(fixture('truncated.sse.txt'));
    const error = await failure(completeAll(adapterFor(server.url)));
    expect(error.code).toBe('WORKER_RESET');
    expect(error.message).toContain('before the final chunk');
  });

  test('HTTP statuses: 400 → INVALID_PARAMS, 500 and 503 → WORKER_RESET; a refused connection → WORKER_RESET', async () => {
    const invalid = await replayServer({
      'POST /completion': { status: 400, body: '{"error":{"code":400,"message":"\\"prompt\\" must be provided","type":"invalid_request_error"}}' },
    });
    expect(await failure(completeAll(adapterFor(invalid.url)))).toMatchObject({ code: 'INVALID_PARAMS' });
    const broken = await replayServer({ 'POST /completion': { status: 500, body: 'segfault' } });
    expect(await failure(completeAll(adapterFor(broken.url)))).toMatchObject({ code: 'WORKER_RESET' });
    const loading = await replayServer({
      'POST /completion': { status: 503, body: '{"error":{"code":503,"message":"Loading model","type":"unavailable_error"}}' },
    });
    const error = await failure(completeAll(adapterFor(loading.url)));
    expect(error.code).toBe('WORKER_RESET');
    expect(error.message).toContain('Loading model');
    const engine = await mockEngine({});
    const url = engine.url;
    await engine.close();
    expect(await failure(completeAll(adapterFor(url)))).toMatchObject({ code: 'WORKER_RESET' });
  });

  test('properties() falls back to a top-level n_ctx; slots() reads the older `state` field', async () => {
    const server = await replayServer({
      'GET /props': { body: JSON.stringify({ total_slots: 2, build_info: 'b6881-8b11deea4', n_ctx: 1024, default_generation_settings: { params: {} } }) },
      'GET /slots': { body: JSON.stringify([{ id: 0, state: 1 }, { id: 1, state: 0 }]) },
    });
    const adapter = adapterFor(server.url);
    await expect(adapter.properties()).resolves.toEqual({ totalSlots: 2, engineVersion: 'b6881-8b11deea4', contextSize: 1024, modelPath: undefined });
    await expect(adapter.slots()).resolves.toEqual([
      { id: 0, isProcessing: true },
      { id: 1, isProcessing: false },
    ]);
  });

  test('scrapeMetrics() on a server without --metrics (501) throws WORKER_RESET', async () => {
    const server = await replayServer({
      'GET /metrics': { status: 501, body: '{"error":{"code":501,"message":"This server does not support metrics endpoint.","type":"not_supported_error"}}' },
    });
    const error = await failure(adapterFor(server.url).scrapeMetrics());
    expect(error.code).toBe('WORKER_RESET');
    expect(error.message).toContain('not_supported_error');
  });
});
