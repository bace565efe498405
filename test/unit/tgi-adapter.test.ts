import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ErrorCode, hasErrorCode } from '../../core/errors';
import type { CompletionRequest, CompletionSummary, EngineAdapter, EngineToken } from '../../gpu-workers/engines/engine-adapter';
import { engineRegistration } from '../../gpu-workers/engines/engine-registry';
import { createTgiAdapter, tgiEngineVersion } from '../../gpu-workers/engines/tgi/tgi-adapter';
import { TGI_DOUBLE_VERSION, startTgiDouble } from '../../gpu-workers/engines/tgi-double/tgi-double';
import type { TgiDouble, TgiDoubleOptions } from '../../gpu-workers/engines/tgi-double/tgi-double';
import { runSelfTest } from '../../gpu-workers/pool-manager/self-test';

/**
 * The TGI adapter (ORCH-3056, OC-ADAPT-5040/5050) against the TGI test double: the double follows TGI's sources
 * (test/unit/tgi-double.test.ts pins that), so these tests are as good as the double — unverified against a real TGI.
 */
const doubles: TgiDouble[] = [];
const adapters: EngineAdapter[] = [];

async function setUp(options: TgiDoubleOptions = {}): Promise<{ double: TgiDouble; adapter: EngineAdapter }> {
  const double = await startTgiDouble({ ttftMs: 0, interTokenMs: 1, ...options });
  doubles.push(double);
  const adapter = createTgiAdapter({ baseUrl: double.url, pollIntervalMs: 5 });
  adapters.push(adapter);
  return { double, adapter };
}

afterEach(async () => {
  await Promise.all(adapters.splice(0).map((adapter) => adapter.close()));
  await Promise.all(doubles.splice(0).map((double) => double.close()));
});

const request = (overrides: Partial<CompletionRequest> = {}): CompletionRequest => ({ prompt: 'Once upon a time', maxTokens: 8, seed: 3, samplerProfile: 'v1', ...overrides });

async function drain(stream: AsyncGenerator<EngineToken, CompletionSummary, void>): Promise<{ tokens: EngineToken[]; summary: CompletionSummary }> {
  const tokens: EngineToken[] = [];
  for (;;) {
    const next = await stream.next();
    if (next.done === true) return { tokens, summary: next.value };
    tokens.push(next.value);
  }
}

async function codeOf(promise: Promise<unknown>): Promise<string | undefined> {
  try {
    await promise;
  } catch (error) {
    return hasErrorCode(error) ? error.code : `not an OrchError: ${String(error)}`;
  }
  return undefined;
}

describe('ORCH-3056 OC-ADAPT-5040 OC-ADAPT-5050: the TGI adapter over TGI\'s native API', () => {
  test('properties from GET /info: slots = max_concurrent_requests, ctx = max_total_tokens, engine_version = version (+ sha), model = model_id', async () => {
    const { adapter } = await setUp({ maxConcurrentRequests: 6, maxTotalTokens: 2048, modelId: 'org/tiny' });
    expect(await adapter.properties()).toEqual({ totalSlots: 6, contextSize: 2048, engineVersion: TGI_DOUBLE_VERSION, modelPath: 'org/tiny' });
    expect(tgiEngineVersion('3.3.6-dev0', 'db931fcf42da018a3657580c64bf2720f167f9ab')).toBe('3.3.6-dev0-db931fcf42da');
    expect(engineRegistration('tgi').testDouble?.isDouble(await adapter.properties())).toBe(true);
    expect(engineRegistration('tgi').testDouble?.isDouble({ totalSlots: 1, contextSize: 1, engineVersion: '3.3.6-dev0-db931fcf42da' })).toBe(false);
  });

  test('health: 200 ready; 503 healthcheck live but not ready; no server not live', async () => {
    const { double, adapter } = await setUp();
    expect(await adapter.health()).toEqual({ live: true, ready: true });
    double.setHealthy(false);
    expect(await adapter.health()).toEqual({ live: true, ready: false, detail: 'HTTP 503: unhealthy (healthcheck)' });
    await double.close();
    expect((await adapter.health()).live).toBe(false);
  });

  test('complete streams the tokens of /generate_stream and sums up from its last event (details: counts, finish reason)', async () => {
    const { double, adapter } = await setUp();
    const { tokens, summary } = await drain(adapter.complete(request(), new AbortController().signal));
    expect(tokens.map((token) => token.index)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(summary).toEqual({ tokensOut: 8, tokensIn: 5, stopReason: 'limit' });
    // The profile in TGI's terms, sampling on with the task's seed, details asked for, never the prompt echoed.
    expect(double.stats().lastRequest).toEqual({
      inputs: 'Once upon a time',
      parameters: { max_new_tokens: 8, seed: 3, stop: [], details: true, return_full_text: false, do_sample: true, temperature: 0.8, top_k: 40, top_p: 0.95, repetition_penalty: 1 },
    });
    // The same seed gives the same text (the double is a pure function of seed and inputs).
    const again = await drain(adapter.complete(request(), new AbortController().signal));
    expect(again.tokens.map((token) => token.text).join('')).toBe(tokens.map((token) => token.text).join(''));
  });

  test('temperature 0 is greedy (do_sample false, no warper: TGI refuses temperature 0), top_p 1 is left out, stop strings end with "word"', async () => {
    const { double, adapter } = await setUp();
    await drain(adapter.complete(request({ sampling: { temperature: 0 } }), new AbortController().signal));
    expect(double.stats().lastRequest).toEqual({ inputs: 'Once upon a time', parameters: { max_new_tokens: 8, seed: 3, stop: [], details: true, return_full_text: false, do_sample: false } });
    await drain(adapter.complete(request({ sampling: { top_p: 1 } }), new AbortController().signal));
    expect((double.stats().lastRequest as { parameters: Record<string, unknown> }).parameters['top_p']).toBeUndefined();
    const plain = await drain(adapter.complete(request({ maxTokens: 30 }), new AbortController().signal));
    const stop = plain.tokens[4]?.text ?? '';
    const stopped = await drain(adapter.complete(request({ maxTokens: 30, sampling: { stop: [stop] } }), new AbortController().signal));
    expect(stopped.summary.stopReason).toBe('word');
    expect(stopped.tokens.at(-1)?.text).toBe(stop);
  });

  test('EOS: the special token is not shown as text, and the stop reason is eos', async () => {
    const { adapter } = await setUp({ emitEos: true });
    const { tokens, summary } = await drain(adapter.complete(request({ maxTokens: 500 }), new AbortController().signal));
    expect(summary.stopReason).toBe('eos');
    // generated_tokens counts the EOS token; the stream shows one token fewer.
    expect(summary.tokensOut).toBe(tokens.length + 1);
    expect(tokens.some((token) => token.text.includes('</s>'))).toBe(false);
  });

  test('errors: a validation event is INVALID_PARAMS (not retried), the overloaded event WORKER_RESET (retried), a chat prompt INVALID_PARAMS', async () => {
    const { adapter } = await setUp({ maxConcurrentRequests: 1, maxTotalTokens: 64, interTokenMs: 20 });
    expect(await codeOf(drain(adapter.complete(request({ maxTokens: 100 }), new AbortController().signal)))).toBe(ErrorCode.INVALID_PARAMS);
    const holder = new AbortController();
    const held = adapter.complete(request({ maxTokens: 50 }), holder.signal);
    await held.next();
    expect(await codeOf(drain(adapter.complete(request(), new AbortController().signal)))).toBe(ErrorCode.WORKER_RESET);
    holder.abort();
    await held.next().catch(() => undefined);
    expect(await codeOf(drain(adapter.complete(request({ prompt: { chat: [{ role: 'user', content: 'hi' }] } }), new AbortController().signal)))).toBe(
      ErrorCode.INVALID_PARAMS,
    );
  });

  test('a broken answer is WORKER_RESET: a stream that ends without its last event, a non-JSON event, an HTTP 500', async () => {
    const answers = ['data:{"index":1,"token":{"id":1,"text":"a","logprob":-1,"special":false},"generated_text":null,"details":null}\n\n', 'data:not json\n\n'];
    let status = 200;
    const server = createServer((req, res) => {
      req.resume();
      res.writeHead(status, { 'content-type': 'text/event-stream' });
      res.end(status === 200 ? answers.shift() : 'boom');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const adapter = createTgiAdapter({ baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}` });
    try {
      expect(await codeOf(drain(adapter.complete(request(), new AbortController().signal)))).toBe(ErrorCode.WORKER_RESET);
      expect(await codeOf(drain(adapter.complete(request(), new AbortController().signal)))).toBe(ErrorCode.WORKER_RESET);
      status = 500;
      expect(await codeOf(drain(adapter.complete(request(), new AbortController().signal)))).toBe(ErrorCode.WORKER_RESET);
    } finally {
      await adapter.close();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  test('ORCH-3026: an abort closes the stream; confirmStopped sees the batch and queue empty of it (tgi_batch_current_size, tgi_queue_size) and the generated-token count stands still', async () => {
    const { double, adapter } = await setUp({ maxConcurrentRequests: 4, interTokenMs: 5 });
    const other = adapter.complete(request({ maxTokens: 400 }), new AbortController().signal);
    await other.next();
    const controller = new AbortController();
    const stream = adapter.complete(request({ maxTokens: 400, seed: 9 }), controller.signal);
    await stream.next();
    expect(double.stats().batchSize).toBe(2);
    controller.abort();
    await expect(stream.next()).rejects.toThrow();
    // One request of ours still runs: the aborted one is confirmed gone while the other goes on.
    await adapter.confirmStopped(undefined, 2_000);
    expect(double.stats().batchSize).toBe(1);
    expect(double.stats().droppedCount).toBe(1);
    await drain(other);
    const metrics = adapter.nativeMetrics;
    const before = metrics?.generatedTokens(await metrics.scrape());
    expect(before).toBe(400);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(metrics?.generatedTokens(await metrics.scrape())).toBe(before);
  });

  test('confirmStopped times out with WORKER_RESET while the engine still runs a request that is not ours', async () => {
    const { double } = await setUp({ interTokenMs: 5 });
    const stranger = createTgiAdapter({ baseUrl: double.url });
    const watcher = createTgiAdapter({ baseUrl: double.url, pollIntervalMs: 5 });
    adapters.push(stranger, watcher);
    const controller = new AbortController();
    const foreign = stranger.complete(request({ maxTokens: 400 }), controller.signal);
    await foreign.next();
    expect(await codeOf(watcher.confirmStopped(undefined, 100))).toBe(ErrorCode.WORKER_RESET);
    controller.abort();
    await foreign.next().catch(() => undefined);
    await watcher.confirmStopped(undefined, 2_000);
  });

  test('countPromptTokens (POST /tokenize) counts what /generate_stream reports as input_length; readLoad reads the batch\'s reserved tokens', async () => {
    const { adapter } = await setUp({ interTokenMs: 5 });
    const { summary } = await drain(adapter.complete(request(), new AbortController().signal));
    expect(await adapter.countPromptTokens?.('Once upon a time')).toBe(summary.tokensIn);
    expect(await adapter.readLoad?.()).toEqual({ kvUsedPermille: null, inflightTokens: 0 });
    const controller = new AbortController();
    const running = adapter.complete(request({ maxTokens: 100 }), controller.signal);
    await running.next();
    expect(await adapter.readLoad?.()).toEqual({ kvUsedPermille: null, inflightTokens: summary.tokensIn + 100 });
    controller.abort();
    await running.next().catch(() => undefined);
  });

  test('ORCH-3049: the start-up self-test (decode, cancel, telemetry) passes on the double', async () => {
    const { adapter } = await setUp({ maxConcurrentRequests: 2, interTokenMs: 5 });
    const report = await runSelfTest(adapter, { slots: 2 });
    expect(report.decodedTokens).toBe(2);
  });
});
