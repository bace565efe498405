import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { basename } from 'node:path';
import { parseCompletionBody } from './mock-completion-request';
import type { MockCompletionParams, MockEngineError } from './mock-completion-request';
import { MockGeneration, nativeWire } from './mock-generation';
import type { CompletionWire, MockCounters } from './mock-generation';
import { renderMockMetrics } from './mock-metrics';
import type { MockMetricsSnapshot } from './mock-metrics';
import { LOADING_ERROR, NOT_FOUND_ERROR, readJsonBody, sendJson } from './mock-http';
import { MockSlotPool } from './mock-slot-pool';
import { mockTokenize } from './mock-vocabulary';
import { applyTemplateAnswer, modelsBody, openAiChatWire, openAiCompletionWire, parseOpenAiChatBody, parseOpenAiCompletionBody } from './mock-openai';

/**
 * A test double that speaks llama-server's native HTTP API (engines.md §1.2–1.5): /health, /props,
 * /slots, /completion (SSE or JSON) and /metrics; and its OpenAI-compatible routes (§1.4, see
 * mock-openai.ts): /v1/completions, /v1/chat/completions and /v1/models. Output is synthetic text,
 * deterministic from (seed, prompt) whatever the route; see mock-vocabulary.ts. Limits, documented here once:
 * - `n_predict` absent → `defaultNPredict`; -1 → until the context is full; stop_type "limit".
 * - EOS only with `emitEos`: then a completion stops (stop_type "eos") after a seed-derived 8–63
 *   tokens unless the request sets `ignore_eos`.
 * - A prompt that fills the context is refused with llama-server's 400 exceed_context_size_error.
 * - Closing the connection stops generation at once and frees the slot, queued or running.
 */
export interface MockEngineOptions {
  /** 0 (default) picks a free port; the server binds 127.0.0.1 only. */
  readonly port?: number | undefined;
  /** Parallel slots (llama-server `-np`); requests beyond them wait, counted as deferred. Default 1. */
  readonly slots?: number | undefined;
  /** Delay from slot grant to the first token ("prompt processing"). Default 20 ms. */
  readonly ttftMs?: number | undefined;
  /** Delay between tokens. Default 5 ms. */
  readonly interTokenMs?: number | undefined;
  /** /health answers 503 "Loading model" for this long after listening. Default 0. */
  readonly loadDelayMs?: number | undefined;
  /** Context window per slot, in tokens. Default 4096. */
  readonly contextSize?: number | undefined;
  /** Tokens generated when a request has no n_predict. Default 16. */
  readonly defaultNPredict?: number | undefined;
  readonly emitEos?: boolean | undefined;
  readonly modelPath?: string | undefined;
  /** llama-server `--alias`: the model name of the OpenAI-compatible routes. Default: the model file's name. */
  readonly modelAlias?: string | undefined;
}

/** build_info the mock reports: clearly not a llama.cpp build ("b<number>-<commit>"). */
export const MOCK_BUILD_INFO = 'mock-0.1.0';

export interface MockEngineStats extends MockMetricsSnapshot {
  readonly ready: boolean;
  /** Completions that passed validation (streamed or not, any route). */
  readonly completionsAccepted: number;
  /** Completions that had to wait for a slot, since start. */
  readonly deferredTotal: number;
  /** The last completion body as received (any route), for asserting what a client sent. */
  readonly lastCompletionRequest: unknown;
}

export interface MockEngine {
  readonly url: string;
  close(): Promise<void>;
  stats(): MockEngineStats;
}

export async function startMockEngine(options: MockEngineOptions = {}): Promise<MockEngine> {
  const slotCount = options.slots ?? 1;
  const contextSize = options.contextSize ?? 4096;
  const defaultNPredict = options.defaultNPredict ?? 16;
  const modelPath = options.modelPath ?? '/models/mock-llamacpp-tiny.gguf';
  // llama-server's model_name: the alias, else the file name; what the OpenAI-compatible routes report.
  const modelName = options.modelAlias ?? basename(modelPath);
  const openAiContext = { model: modelName, buildInfo: MOCK_BUILD_INFO };
  const timing = {
    ttftMs: options.ttftMs ?? 20,
    interTokenMs: options.interTokenMs ?? 5,
    emitEos: options.emitEos ?? false,
    modelName: modelPath,
  };
  const pool = new MockSlotPool(slotCount);
  const counters: MockCounters = {
    promptTokensTotal: 0,
    promptSecondsTotal: 0,
    tokensPredictedTotal: 0,
    tokensPredictedSecondsTotal: 0,
    completionsFinished: 0,
    completionsCancelled: 0,
  };
  let ready = (options.loadDelayMs ?? 0) <= 0;
  let loadTimer: NodeJS.Timeout | undefined;
  let completionsAccepted = 0;
  let lastCompletionRequest: unknown;

  const metricsSnapshot = (): MockMetricsSnapshot => ({
    ...counters,
    requestsProcessing: pool.processingCount,
    requestsDeferred: pool.deferredCount,
  });

  const props = (): unknown => ({
    default_generation_settings: { id: 0, id_task: -1, n_ctx: contextSize, speculative: false, is_processing: false, params: {}, prompt: '' },
    total_slots: slotCount,
    model_path: modelPath,
    chat_template: '',
    modalities: { vision: false, audio: false },
    build_info: MOCK_BUILD_INFO,
    is_sleeping: false,
  });

  const slotsView = (): unknown =>
    pool.slots.map((slot) => ({
      id: slot.id,
      id_task: slot.idTask,
      n_ctx: contextSize,
      speculative: false,
      is_processing: slot.isProcessing,
      params: { seed: slot.seed, ...slot.params },
      prompt: '',
      // What the slot's KV holds: the running task's prompt and output so far, or the last task's.
      n_prompt_tokens: slot.nHeld,
      next_token: {
        has_next_token: slot.isProcessing,
        has_new_line: false,
        n_remain: slot.nRemain,
        n_decoded: slot.nDecoded,
        stopping_word: '',
      },
    }));

  type CompletionRoute = (body: unknown) => { ok: true; params: MockCompletionParams; wire: CompletionWire } | { ok: false; error: MockEngineError };
  const limits = { slotCount, contextSize, defaultNPredict };

  const nativeRoute: CompletionRoute = (body) => {
    const parsed = parseCompletionBody(body, limits);
    return parsed.ok ? { ok: true, params: parsed.params, wire: nativeWire(parsed.params) } : parsed;
  };
  const openAiCompletionRoute: CompletionRoute = (body) => {
    const parsed = parseOpenAiCompletionBody(body, limits);
    return parsed.ok ? { ok: true, params: parsed.request.params, wire: openAiCompletionWire(openAiContext) } : parsed;
  };
  const openAiChatRoute: CompletionRoute = (body) => {
    const parsed = parseOpenAiChatBody(body, limits);
    return parsed.ok ? { ok: true, params: parsed.request.params, wire: openAiChatWire(openAiContext, parsed.request.includeUsage) } : parsed;
  };

  async function handleCompletion(req: IncomingMessage, res: ServerResponse, parse: CompletionRoute): Promise<void> {
    // Registered before the body is read, so a client that leaves early is never missed.
    let gone = false;
    let onGone = (): void => undefined;
    res.on('close', () => {
      if (res.writableFinished) return;
      gone = true;
      onGone();
    });
    const body = await readJsonBody(req);
    if (gone) return;
    if (!body.ok) return sendJson(res, body.error.status, body.error.body);
    lastCompletionRequest = body.value;
    const parsed = parse(body.value);
    if (!parsed.ok) return sendJson(res, parsed.error.status, parsed.error.body);
    completionsAccepted++;
    const params = parsed.params;
    if (params.stream) {
      res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });
      res.flushHeaders();
    }
    const generation = new MockGeneration(params, res, counters, timing, (slot) => pool.release(slot), parsed.wire);
    const slotRequest = pool.acquire(params.slotId, generation.start);
    onGone = () => {
      slotRequest.withdraw();
      generation.cancel();
    };
  }

  function route(req: IncomingMessage, res: ServerResponse): void {
    const path = (req.url ?? '/').split('?', 1)[0] ?? '/';
    const method = req.method ?? 'GET';
    if (method === 'GET' && (path === '/health' || path === '/v1/health')) {
      if (!ready) return sendJson(res, LOADING_ERROR.status, LOADING_ERROR.body);
      return sendJson(res, 200, { status: 'ok' });
    }
    // Like llama-server, the models list answers while loading (meta null); every other route 503s until loaded.
    if (method === 'GET' && (path === '/v1/models' || path === '/models')) {
      return sendJson(res, 200, modelsBody({ name: modelName, aliases: options.modelAlias === undefined ? [] : [options.modelAlias], contextSize }, ready));
    }
    if (!ready) return sendJson(res, LOADING_ERROR.status, LOADING_ERROR.body);
    if (method === 'GET' && path === '/props') return sendJson(res, 200, props());
    if (method === 'GET' && path === '/slots') return sendJson(res, 200, slotsView());
    if (method === 'GET' && path === '/metrics') {
      const text = renderMockMetrics(metricsSnapshot());
      res.writeHead(200, { 'Content-Type': 'text/plain; version=0.0.4', 'Content-Length': Buffer.byteLength(text) });
      res.end(text);
      return;
    }
    const erase = /^\/slots\/(\d+)$/.exec(path);
    if (method === 'POST' && erase && new URL(req.url ?? '/', 'http://mock').searchParams.get('action') === 'erase') {
      // llama-server's slot erase (needs --slot-save-path there): drops the slot's cached KV.
      const slot = pool.slots[Number(erase[1])];
      if (slot === undefined) return sendJson(res, 400, { error: { code: 400, message: 'Invalid slot ID', type: 'invalid_request_error' } });
      const erased = slot.nCached;
      slot.cachedText = '';
      slot.nCached = 0;
      slot.nHeld = 0;
      req.resume();
      return sendJson(res, 200, { id_slot: slot.id, n_erased: erased });
    }
    if (method === 'POST' && path === '/tokenize') {
      void readJsonBody(req).then((body) => {
        const answer = body.ok ? tokenizeAnswer(body.value) : body.error;
        sendJson(res, answer.status, answer.body);
      });
      return;
    }
    if (method === 'POST' && path === '/apply-template') {
      void readJsonBody(req).then((body) => {
        const answer = body.ok ? applyTemplateAnswer(body.value) : body.error;
        sendJson(res, answer.status, answer.body);
      });
      return;
    }
    const completionRoute =
      method !== 'POST'
        ? undefined
        : path === '/completion' || path === '/completions'
          ? nativeRoute
          : path === '/v1/completions'
            ? openAiCompletionRoute
            : path === '/v1/chat/completions' || path === '/chat/completions'
              ? openAiChatRoute
              : undefined;
    if (completionRoute !== undefined) {
      handleCompletion(req, res, completionRoute).catch((error: unknown) => {
        if (!res.headersSent) sendJson(res, 500, { error: { code: 500, message: String(error), type: 'server_error' } });
        else res.destroy();
      });
      return;
    }
    sendJson(res, NOT_FOUND_ERROR.status, NOT_FOUND_ERROR.body);
  }

  const server = createServer(route);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  if (!ready) {
    loadTimer = setTimeout(() => {
      ready = true;
    }, options.loadDelayMs);
  }
  const address = server.address() as AddressInfo;
  let closing: Promise<void> | undefined;

  return {
    url: `http://127.0.0.1:${address.port}`,
    stats: () => ({
      ...metricsSnapshot(),
      ready,
      completionsAccepted,
      deferredTotal: pool.deferredTotal,
      lastCompletionRequest,
    }),
    close: () => {
      closing ??= new Promise<void>((resolve, reject) => {
        if (loadTimer !== undefined) clearTimeout(loadTimer);
        server.close((error) => (error === undefined ? resolve() : reject(error)));
        // Drops idle keep-alive sockets and live streams; their 'close' cancels the generations.
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

/** POST /tokenize (llama-server): `{content, add_special?}` → `{tokens}`; add_special defaults to false there too. */
function tokenizeAnswer(raw: unknown): { status: number; body: unknown } {
  const body = typeof raw === 'object' && raw !== null ? (raw as Record<string, unknown>) : {};
  const content = body['content'];
  if (content === undefined) return { status: 200, body: { tokens: [] } };
  if (typeof content !== 'string') return { status: 400, body: { error: { code: 400, message: '"content" must be a string', type: 'invalid_request_error' } } };
  return { status: 200, body: { tokens: mockTokenize(content, body['add_special'] === true) } };
}
