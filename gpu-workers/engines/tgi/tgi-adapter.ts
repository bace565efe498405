import { performance } from 'node:perf_hooks';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request } from 'undici';
import type { Dispatcher } from 'undici';
import type {
  CompletionRequest,
  CompletionSummary,
  EngineAdapter,
  EngineCapabilities,
  EngineHealth,
  EngineLoad,
  EngineProperties,
  EngineToken,
  PromptInput,
} from '../engine-adapter';
import { parseSseEvents } from '../llamacpp/sse-events';
import { prometheusValue } from '../prometheus-sample';
import { TgiErrorResponseSchema, TgiInfoSchema, TgiTokenizeResponseSchema } from './tgi-api-types';
import { fromHttpStatus, fromTransportFailure, invalidParams, workerReset } from './tgi-errors';
import { buildGenerateRequest } from './tgi-request-body';
import { readTgiStream } from './tgi-stream';

export interface TgiAdapterOptions {
  /** The TGI router's base URL, e.g. `http://127.0.0.1:3000`; a path prefix is kept. */
  readonly baseUrl: string;
  readonly dispatcher?: Dispatcher | undefined;
  /** Deadline for each health, info, tokenize and metrics call. Default 5 s. */
  readonly controlTimeoutMs?: number | undefined;
  /** confirmStopped's polling interval. Default 20 ms. */
  readonly pollIntervalMs?: number | undefined;
}

/**
 * What TGI's native API offers (.specs/engines/tgi.md): no slots to pin or inspect (one router batches every
 * request), no prompt-cache switch (TGI's prefix cache is automatic), no chat template on /generate_stream (its
 * template lives behind /v1/chat/completions, which adds no special tokens to the rendered text, while
 * /generate_stream always adds them). Determinism: `none` — nothing has been measured on a real TGI; the adapter is
 * verified only against the test double (gpu-workers/engines/tgi-double/).
 */
export const TGI_CAPABILITIES: EngineCapabilities = {
  slotPinning: false,
  promptCache: false,
  chatTemplate: false,
  determinism: 'none',
};

/** Generated tokens of the requests TGI finished (a histogram's sum; backends record it when a request ends). */
const GENERATED_TOKENS_SUM = 'tgi_request_generated_tokens_sum';

const DEFAULT_CONTROL_TIMEOUT_MS = 5_000;
const DEFAULT_POLL_INTERVAL_MS = 20;
const KEEP_ALIVE_TIMEOUT_MS = 4_000;

interface TextResponse {
  readonly statusCode: number;
  readonly text: string;
}

function bodyChunks(body: Readable): AsyncIterable<Uint8Array> {
  return body.iterator({ destroyOnReturn: false }) as AsyncIterable<Uint8Array>;
}

function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw workerReset(`${what} is not JSON: ${text.slice(0, 200)}`, error);
  }
}

/** `version` plus the router's git sha where TGI was built with one (ORCH-3032). */
export function tgiEngineVersion(version: string | null | undefined, sha: string | null | undefined): string {
  const base = version ?? 'unknown';
  return sha != null && sha.length > 0 ? `${base}-${sha.slice(0, 12)}` : base;
}

/**
 * The adapter for Hugging Face Text Generation Inference over its native API (ORCH-3054): POST /generate_stream,
 * GET /health, /info, /metrics, POST /tokenize. undici without retries (Temporal owns retries). A cancel closes the
 * stream's connection: TGI drops the request from its queue or batch at its next step (backends/v3 `is_closed`).
 */
export function createTgiAdapter(options: TgiAdapterOptions): EngineAdapter {
  const base = options.baseUrl.endsWith('/') ? options.baseUrl : `${options.baseUrl}/`;
  let ownAgent: Agent | undefined;
  const dispatcher: Dispatcher = options.dispatcher ?? (ownAgent = new Agent({ keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS }));
  const controlTimeoutMs = options.controlTimeoutMs ?? DEFAULT_CONTROL_TIMEOUT_MS;
  const pollIntervalMs = options.pollIntervalMs ?? DEFAULT_POLL_INTERVAL_MS;
  const url = (path: string): URL => new URL(path, base);
  /** Completions of this adapter whose connection is open: what TGI's batch and queue may hold of ours. */
  let openCompletions = 0;

  async function call(method: 'GET' | 'POST', path: string, body: unknown, signal: AbortSignal | undefined, timeoutMs = controlTimeoutMs): Promise<TextResponse> {
    // undici reads a 0 timeout as "none"; a control call always has one.
    const deadlineMs = Math.max(1, Math.round(timeoutMs));
    try {
      const response = await request(url(path), {
        method,
        dispatcher,
        signal: signal ?? null,
        headersTimeout: deadlineMs,
        bodyTimeout: deadlineMs,
        ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
      });
      return { statusCode: response.statusCode, text: await response.body.text() };
    } catch (error) {
      throw fromTransportFailure(error, signal);
    }
  }

  async function health(signal?: AbortSignal): Promise<EngineHealth> {
    let response: TextResponse;
    try {
      response = await call('GET', 'health', undefined, signal);
    } catch (error) {
      if (signal?.aborted === true) throw error;
      // TGI's router listens only once its shards are warm: no answer is "not up yet".
      return { live: false, ready: false, detail: error instanceof Error ? error.message : String(error) };
    }
    if (response.statusCode === 200) return { live: true, ready: true };
    let detail = `HTTP ${response.statusCode}`;
    try {
      const envelope = TgiErrorResponseSchema.safeParse(JSON.parse(response.text));
      if (envelope.success) detail = `${detail}: ${envelope.data.error}${envelope.data.error_type != null ? ` (${envelope.data.error_type})` : ''}`;
    } catch {
      // Not JSON: the status says enough.
    }
    // 503 {"error":"unhealthy","error_type":"healthcheck"}: the router answers, its model shards do not.
    return { live: true, ready: false, detail };
  }

  async function properties(signal?: AbortSignal): Promise<EngineProperties> {
    const response = await call('GET', 'info', undefined, signal);
    if (response.statusCode !== 200) throw fromHttpStatus(response.statusCode, response.text);
    const parsed = TgiInfoSchema.safeParse(parseJson(response.text, '/info'));
    if (!parsed.success) throw workerReset(`unexpected /info answer: ${parsed.error.message}`);
    const info = parsed.data;
    if (info.max_concurrent_requests == null || info.max_total_tokens == null) throw workerReset('/info lacks max_concurrent_requests or max_total_tokens');
    return {
      // The router's semaphore: past it TGI refuses ("overloaded") rather than queue.
      totalSlots: info.max_concurrent_requests,
      engineVersion: tgiEngineVersion(info.version, info.sha),
      // Prompt + generated tokens per request (TGI's `--max-total-tokens`).
      contextSize: info.max_total_tokens,
      modelPath: info.model_id ?? undefined,
    };
  }

  function textOf(prompt: PromptInput): string {
    if (typeof prompt === 'string') return prompt;
    throw invalidParams('the TGI adapter takes text prompts only (capability chatTemplate: false); /generate_stream renders no chat template');
  }

  async function* complete(completion: CompletionRequest, signal: AbortSignal): AsyncGenerator<EngineToken, CompletionSummary, void> {
    const body = buildGenerateRequest(completion, textOf(completion.prompt));
    openCompletions++;
    let response: Dispatcher.ResponseData | undefined;
    let completed = false;
    try {
      try {
        response = await request(url('generate_stream'), {
          method: 'POST',
          dispatcher,
          signal,
          headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
          body: JSON.stringify(body),
        });
      } catch (error) {
        throw fromTransportFailure(error, signal);
      }
      if (response.statusCode !== 200) throw fromHttpStatus(response.statusCode, await response.body.text());
      const summary = yield* readTgiStream(parseSseEvents(bodyChunks(response.body)), signal);
      completed = true;
      return summary;
    } catch (error) {
      throw fromTransportFailure(error, signal);
    } finally {
      if (completed) {
        // The last event is in; let the body end on its own so the socket stays in the keep-alive pool.
        response?.body.on('error', () => undefined).resume();
      } else {
        // Aborted, failed or stopped early: closing the connection is what makes TGI drop the request.
        response?.body.on('error', () => undefined).destroy();
      }
      openCompletions--;
    }
  }

  async function scrapeMetrics(signal?: AbortSignal, timeoutMs?: number): Promise<string> {
    const response = await call('GET', 'metrics', undefined, signal, timeoutMs);
    if (response.statusCode !== 200) throw fromHttpStatus(response.statusCode, response.text);
    return response.text;
  }

  /**
   * TGI shows no request by id, only how many requests its batch runs and its queue holds (`tgi_batch_current_size`,
   * `tgi_queue_size`; absent before the first request, i.e. 0). The aborted request is gone once they hold no more
   * than this adapter's own open completions. A TGI that other clients use too may never show that: the pool is
   * expected to own its TGI (.specs/engines/tgi.md).
   */
  async function confirmStopped(_slotId: number | undefined, timeoutMs: number): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    let lastSeen = 'no answer yet';
    for (;;) {
      try {
        const text = await scrapeMetrics(undefined, Math.min(controlTimeoutMs, Math.max(1, deadline - performance.now())));
        const occupied = (prometheusValue(text, 'tgi_batch_current_size') ?? 0) + (prometheusValue(text, 'tgi_queue_size') ?? 0);
        if (occupied <= openCompletions) return;
        lastSeen = `batch and queue hold ${occupied} requests, ${openCompletions} of them open here`;
      } catch (error) {
        lastSeen = error instanceof Error ? error.message : String(error);
      }
      if (performance.now() + pollIntervalMs > deadline) throw workerReset(`the aborted request was not seen leaving the batch within ${timeoutMs} ms (${lastSeen})`);
      await sleep(pollIntervalMs);
    }
  }

  /** POST /tokenize: TGI tokenizes `inputs` as /generate_stream does (the model's special tokens added). */
  async function countPromptTokens(prompt: PromptInput, signal?: AbortSignal): Promise<number> {
    const response = await call('POST', 'tokenize', { inputs: textOf(prompt) }, signal);
    // 404 {"error":"No fast tokenizer available"}: this TGI cannot count.
    if (response.statusCode !== 200) throw fromHttpStatus(response.statusCode, response.text);
    const parsed = TgiTokenizeResponseSchema.safeParse(parseJson(response.text, '/tokenize'));
    if (!parsed.success) throw workerReset(`unexpected /tokenize answer: ${parsed.error.message}`);
    return parsed.data.length;
  }

  /**
   * TGI exports no KV use and no per-request token counts. Its nearest figure is `tgi_batch_current_max_tokens`: the
   * tokens its running batch reserves (each request's prompt plus its max_new_tokens, in chunks of at most 1024), an
   * upper bound on the in-flight tokens, reported as such. KV use stays unknown (null).
   */
  async function readLoad(signal?: AbortSignal): Promise<EngineLoad> {
    const text = await scrapeMetrics(signal);
    return { kvUsedPermille: null, inflightTokens: prometheusValue(text, 'tgi_batch_current_max_tokens') ?? 0 };
  }

  return {
    specificationVersion: 'v2',
    engine: 'tgi',
    capabilities: TGI_CAPABILITIES,
    health,
    properties,
    complete,
    confirmStopped,
    countPromptTokens,
    nativeMetrics: { scrape: (signal) => scrapeMetrics(signal), generatedTokens: (text) => prometheusValue(text, GENERATED_TOKENS_SUM) },
    readLoad,
    close: async () => {
      await ownAgent?.close();
    },
  };
}
