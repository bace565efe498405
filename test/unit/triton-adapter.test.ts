import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent } from 'undici';
import { collect, failureCode } from '../support/adapter-results';
import type { CompletionRequest, EngineAdapter, EngineToken } from '../../gpu-workers/engines/engine-adapter';
import { buildGenerateBody, createTritonAdapter, createTritonAdapterFromUrl, modelSample, TRITON_MODEL_METRICS } from '../../gpu-workers/engines/triton/triton-adapter';

/** Recorded from the real tritonserver 2.51.0 (nvidia-pytriton 0.7.0) serving llamacpp_model.py as `llm`. */
const FIXTURES = join(__dirname, '__fixtures__', 'triton');
const fixture = (name: string): string => readFileSync(join(FIXTURES, name), 'utf8');

const agent = new Agent({ keepAliveTimeout: 10, keepAliveMaxTimeout: 10 });
const closers: (() => Promise<void>)[] = [];

afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});
afterAll(async () => {
  await agent.close();
});

interface Reply {
  readonly status?: number;
  readonly contentType?: string;
  /** A fixed body, or one per call (the last repeats): a metrics gauge that changes between scrapes. */
  readonly body: string | readonly string[];
  /** Writes the body in pieces of this many bytes, `pieceDelayMs` apart. */
  readonly pieceBytes?: number;
  readonly pieceDelayMs?: number;
}

interface ReplayServer {
  readonly url: string;
  readonly requests: { method: string; path: string; body: string }[];
  /** Resolves when a client closed a response before its end. */
  readonly clientClosed: Promise<void>;
}

async function replayServer(routes: Record<string, Reply>): Promise<ReplayServer> {
  const requests: ReplayServer['requests'] = [];
  const calls = new Map<string, number>();
  let closed: () => void = () => undefined;
  const clientClosed = new Promise<void>((resolve) => (closed = resolve));
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const key = `${req.method ?? ''} ${req.url ?? '/'}`;
      requests.push({ method: req.method ?? '', path: req.url ?? '/', body: Buffer.concat(chunks).toString('utf8') });
      const reply = routes[key];
      if (reply === undefined) {
        res.writeHead(404, { 'content-type': 'application/json' }).end(fixture('unknown-model.json'));
        return;
      }
      const call = calls.get(key) ?? 0;
      calls.set(key, call + 1);
      const body = Buffer.from(typeof reply.body === 'string' ? reply.body : (reply.body[Math.min(call, reply.body.length - 1)] ?? ''));
      res.on('close', () => {
        if (!res.writableFinished) closed();
      });
      res.writeHead(reply.status ?? 200, { 'content-type': reply.contentType ?? 'application/json' });
      const pieceBytes = reply.pieceBytes ?? Math.max(1, body.length);
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
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests, clientClosed };
}

const STREAM = 'POST /v2/models/llm/generate_stream';
const EVENT_STREAM = 'text/event-stream; charset=utf-8';
const EMPTY_OK: Reply = { body: '', contentType: 'text/plain' };
const REQUEST: CompletionRequest = { prompt: 'The capital of France is', maxTokens: 8, seed: 42, samplerProfile: 'v1' };

function adapterFor(server: ReplayServer, pollIntervalMs = 5): EngineAdapter {
  const adapter = createTritonAdapter({ baseUrl: server.url, modelName: 'llm', metricsUrl: `${server.url}/metrics`, dispatcher: agent, pollIntervalMs });
  closers.push(() => adapter.close());
  return adapter;
}

function metricsWith(active: number): string {
  return fixture('metrics.txt').replace(/^orch_triton_model_active_sequences\{model="llm"\} \d+$/m, `orch_triton_model_active_sequences{model="llm"} ${active}`);
}

describe('Triton adapter over recorded tritonserver 2.51.0 answers (ORCH-3057, OC-ADAPT-5060)', () => {
  test('ORCH-3057 OC-ADAPT-5070 ORCH-3032: properties — engine_version is GET /v2 name-version plus the generating engine build the model publishes; slots and ctx are the model config parameters', async () => {
    const server = await replayServer({ 'GET /v2': { body: fixture('v2.json') }, 'GET /v2/models/llm/config': { body: fixture('model-config.json') } });
    const properties = await adapterFor(server).properties();
    expect(properties).toEqual({
      engineVersion: 'triton-2.51.0+b1-de3ff81',
      totalSlots: 1,
      contextSize: 2048,
      modelPath: expect.stringMatching(/SmolLM2-135M-Instruct\.Q4_1\.gguf$/),
    });
  });

  test('ORCH-3057: a model config without decoupled streaming or without max_sequences is refused as WORKER_RESET', async () => {
    const config = JSON.parse(fixture('model-config.json')) as Record<string, unknown>;
    const notDecoupled = await replayServer({ 'GET /v2': { body: fixture('v2.json') }, 'GET /v2/models/llm/config': { body: JSON.stringify({ ...config, model_transaction_policy: { decoupled: false } }) } });
    expect(await failureCode(adapterFor(notDecoupled).properties())).toBe('WORKER_RESET');
    const noSlots = await replayServer({ 'GET /v2': { body: fixture('v2.json') }, 'GET /v2/models/llm/config': { body: JSON.stringify({ ...config, parameters: {} }) } });
    expect(await failureCode(adapterFor(noSlots).properties())).toBe('WORKER_RESET');
  });

  test('ORCH-3057 ORCH-3002: health keys on status codes (Triton answers with an empty body): ready only when the server and the model are', async () => {
    const ready = await replayServer({ 'GET /v2/health/live': EMPTY_OK, 'GET /v2/health/ready': EMPTY_OK, 'GET /v2/models/llm/ready': EMPTY_OK });
    expect(await adapterFor(ready).health()).toEqual({ live: true, ready: true });
    const loading = await replayServer({ 'GET /v2/health/live': EMPTY_OK, 'GET /v2/health/ready': EMPTY_OK, 'GET /v2/models/llm/ready': { ...EMPTY_OK, status: 400 } });
    expect(await adapterFor(loading).health()).toEqual({ live: true, ready: false, detail: 'model llm ready: HTTP 400' });
    const gone = createTritonAdapter({ baseUrl: 'http://127.0.0.1:1', modelName: 'llm', metricsUrl: 'http://127.0.0.1:1/metrics', dispatcher: agent });
    const health = await gone.health();
    expect(health.live).toBe(false);
    expect(health.ready).toBe(false);
  });

  test('ORCH-3057 ORCH-2001: complete streams one token per generate_stream frame, in order, and the summary comes from the last frame', async () => {
    const server = await replayServer({ [STREAM]: { body: fixture('generate-stream.chunks.txt'), contentType: EVENT_STREAM, pieceBytes: 37 } });
    const { tokens, summary } = await collect(adapterFor(server).complete(REQUEST, new AbortController().signal));
    expect(tokens.map((token) => token.text).join('')).toBe(' Paris. The capital of France is Paris');
    expect(tokens.map((token) => token.index)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(summary).toEqual({ tokensOut: 8, tokensIn: 5, stopReason: 'limit', decodeMs: expect.any(Number) });
  });

  test('ORCH-3058 OC-ADAPT-5010: the request names the v1 sampler profile explicitly (values and chain), the seed and max_tokens; a chat goes as chat_messages, stop strings as stop_words', async () => {
    const server = await replayServer({ [STREAM]: { body: fixture('generate-stream-chat-stop-word.chunks.txt'), contentType: EVENT_STREAM } });
    const chat: CompletionRequest = { prompt: { chat: [{ role: 'user', content: 'Name three colours.' }] }, maxTokens: 30, seed: 1, samplerProfile: 'v1', sampling: { stop: ['.'] } };
    const { summary } = await collect(adapterFor(server).complete(chat, new AbortController().signal));
    expect(summary.stopReason).toBe('word');
    expect(JSON.parse(server.requests[0]?.body ?? '{}')).toEqual({
      chat_messages: '[{"role":"user","content":"Name three colours."}]',
      max_tokens: 30,
      random_seed: 1,
      temperature: 0.8,
      top_k: 40,
      top_p: 0.95,
      min_p: 0.05,
      repetition_penalty: 1,
      samplers: 'top_k;top_p;min_p;temperature',
      stop_words: ['.'],
    });
    expect(buildGenerateBody(REQUEST)).toMatchObject({ text_input: REQUEST.prompt, max_tokens: 8, random_seed: 42 });
  });

  test('ORCH-3057: a request the model refuses before streaming (HTTP 400, "invalid request: …") is INVALID_PARAMS; an engine failure in the same shape is WORKER_RESET', async () => {
    const refused = await replayServer({ [STREAM]: { status: 400, body: fixture('refused-context.chunks.txt'), contentType: EVENT_STREAM } });
    expect(await failureCode(collect(adapterFor(refused).complete(REQUEST, new AbortController().signal)))).toBe('INVALID_PARAMS');
    const broken = await replayServer({ [STREAM]: { status: 400, body: fixture('engine-failure.chunks.txt'), contentType: EVENT_STREAM } });
    expect(await failureCode(collect(adapterFor(broken).complete(REQUEST, new AbortController().signal)))).toBe('WORKER_RESET');
    const unknown = await replayServer({});
    expect(await failureCode(collect(adapterFor(unknown).complete(REQUEST, new AbortController().signal)))).toBe('WORKER_RESET');
  });

  test('ORCH-3057: an error frame after tokens (HTTP 200 already sent) fails the stream with WORKER_RESET once the tokens before it are out; a stream without its last frame too', async () => {
    const server = await replayServer({ [STREAM]: { body: fixture('engine-failure-mid-stream.chunks.txt'), contentType: EVENT_STREAM } });
    const tokens: EngineToken[] = [];
    const stream = adapterFor(server).complete(REQUEST, new AbortController().signal);
    const code = await failureCode(
      (async () => {
        for await (const token of stream) tokens.push(token);
      })(),
    );
    expect(code).toBe('WORKER_RESET');
    expect(tokens.length).toBeGreaterThan(10);
    const frames = fixture('generate-stream.chunks.txt').split('\n\n');
    const truncated = await replayServer({ [STREAM]: { body: `${frames.slice(0, 3).join('\n\n')}\n\n`, contentType: EVENT_STREAM } });
    expect(await failureCode(collect(adapterFor(truncated).complete(REQUEST, new AbortController().signal)))).toBe('WORKER_RESET');
  });

  test('ORCH-3026: aborting mid-stream ends the generator with an AbortError and closes the connection (how Triton learns to cancel)', async () => {
    const server = await replayServer({ [STREAM]: { body: fixture('engine-failure-mid-stream.chunks.txt'), contentType: EVENT_STREAM, pieceBytes: 60, pieceDelayMs: 20 } });
    const controller = new AbortController();
    const stream = adapterFor(server).complete(REQUEST, controller.signal);
    await stream.next();
    controller.abort();
    expect(await failureCode(stream.next())).toBe('AbortError');
    await server.clientClosed;
  });

  test('ORCH-3026 ORCH-3017: confirmStopped waits until the model\'s active-sequence gauge falls to the streams still open, and fails WORKER_RESET when it never does', async () => {
    const stopping = await replayServer({ 'GET /metrics': { body: [metricsWith(1), metricsWith(1), metricsWith(0)], contentType: 'text/plain' } });
    await adapterFor(stopping).confirmStopped(undefined, 2_000);
    expect(stopping.requests.filter((request) => request.path === '/metrics').length).toBe(3);
    const stuck = await replayServer({ 'GET /metrics': { body: metricsWith(1), contentType: 'text/plain' } });
    expect(await failureCode(adapterFor(stuck).confirmStopped(undefined, 200))).toBe('WORKER_RESET');
  });

  test('ORCH-3057 ORCH-3027: native metrics read the model\'s generated-token counter by model label; load reads its in-flight tokens', async () => {
    const metrics = fixture('metrics.txt');
    const server = await replayServer({ 'GET /metrics': { body: metrics, contentType: 'text/plain' } });
    const adapter = adapterFor(server);
    const text = await adapter.nativeMetrics?.scrape();
    expect(adapter.nativeMetrics?.generatedTokens(text ?? '')).toBe(modelSample(metrics, TRITON_MODEL_METRICS.generatedTokens, 'llm'));
    expect(adapter.nativeMetrics?.generatedTokens(text ?? '')).toBeGreaterThan(0);
    expect(modelSample(metrics, 'nv_inference_request_success', 'llm_tokenize')).toBe(1);
    expect(await adapter.readLoad?.()).toEqual({ kvUsedPermille: null, inflightTokens: 0 });
  });

  test('ORCH-3015: prompt tokens are counted by the tokenizer model the generating model names', async () => {
    const server = await replayServer({ 'GET /v2/models/llm/config': { body: fixture('model-config.json') }, 'POST /v2/models/llm_tokenize/generate': { body: fixture('tokenize.json') } });
    expect(await adapterFor(server).countPromptTokens?.('The capital of France is')).toBe(5);
    expect(JSON.parse(server.requests.at(-1)?.body ?? '{}')).toEqual({ text_input: 'The capital of France is' });
  });

  test('an external Triton is named by its model URL (the server URL alone means model llm); the metrics port defaults to Triton\'s 8002', async () => {
    expect(() => createTritonAdapterFromUrl('http://127.0.0.1:8000/v2/health')).toThrow(/v2\/models/);
    const metrics = fixture('metrics.txt');
    const server = await replayServer({ 'GET /metrics': { body: metrics, contentType: 'text/plain' } });
    const port = new URL(server.url).port;
    for (const url of [`http://127.0.0.1:9/v2/models/llm?metrics_port=${port}`, `http://127.0.0.1:9?metrics_port=${port}`]) {
      const adapter = createTritonAdapterFromUrl(url);
      closers.push(() => adapter.close());
      expect(adapter.engine).toBe('triton');
      expect(adapter.nativeMetrics?.generatedTokens(await adapter.nativeMetrics.scrape())).toBe(30);
    }
  });
});
