import { createEngineHttp, pollUntil, readHealth } from '../engine-http';
import type { EngineHttpOptions } from '../engine-http';
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
import { prometheusValue } from '../prometheus-sample';
import { TgiErrorResponseSchema, TgiInfoSchema, TgiTokenizeResponseSchema } from './tgi-api-types';
import { fromHttpStatus, fromTransportFailure, invalidParams, workerReset } from './tgi-errors';
import { buildGenerateRequest } from './tgi-request-body';
import { readTgiStream } from './tgi-stream';

/** `baseUrl` is the TGI router's, e.g. `http://127.0.0.1:3000`. */
export interface TgiAdapterOptions extends EngineHttpOptions {
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

const DEFAULT_POLL_INTERVAL_MS = 20;

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
  const http = createEngineHttp(options, { fromHttpStatus, fromTransportFailure, workerReset });
  const pollIntervalMs = options.pollIntervalMs ?? DEFAULT_POLL_INTERVAL_MS;
  /** Completions of this adapter whose connection is open: what TGI's batch and queue may hold of ours. */
  let openCompletions = 0;

  // TGI's router listens only once its shards are warm: no answer is "not up yet". A 503
  // {"error":"unhealthy","error_type":"healthcheck"} means the router answers and its model shards do not.
  function health(signal?: AbortSignal): Promise<EngineHealth> {
    return readHealth(http, 'health', signal, (text) => {
      const envelope = TgiErrorResponseSchema.safeParse(JSON.parse(text));
      return envelope.success ? `${envelope.data.error}${envelope.data.error_type != null ? ` (${envelope.data.error_type})` : ''}` : undefined;
    });
  }


  async function properties(signal?: AbortSignal): Promise<EngineProperties> {
    const parsed = TgiInfoSchema.safeParse(await http.callJson('GET', 'info', undefined, signal));
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
    try {
      // Aborted, failed or stopped early: closing the connection is what makes TGI drop the request.
      return yield* http.stream('generate_stream', body, signal, (events) => readTgiStream(events, signal));
    } finally {
      openCompletions--;
    }
  }

  async function scrapeMetrics(signal?: AbortSignal, timeoutMs?: number): Promise<string> {
    const response = await http.call('GET', 'metrics', undefined, signal, timeoutMs);
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
    await pollUntil({
      timeoutMs,
      intervalMs: pollIntervalMs,
      controlTimeoutMs: http.controlTimeoutMs,
      read: (budgetMs) => scrapeMetrics(undefined, budgetMs),
      check: (text) => {
        const occupied = (prometheusValue(text, 'tgi_batch_current_size') ?? 0) + (prometheusValue(text, 'tgi_queue_size') ?? 0);
        return occupied <= openCompletions ? undefined : `batch and queue hold ${occupied} requests, ${openCompletions} of them open here`;
      },
      timedOut: (lastSeen) => workerReset(`the aborted request was not seen leaving the batch within ${timeoutMs} ms (${lastSeen})`),
    });
  }

  /** POST /tokenize: TGI tokenizes `inputs` as /generate_stream does (the model's special tokens added). */
  async function countPromptTokens(prompt: PromptInput, signal?: AbortSignal): Promise<number> {
    const response = await http.call('POST', 'tokenize', { inputs: textOf(prompt) }, signal);
    // 404 {"error":"No fast tokenizer available"}: this TGI cannot count.
    if (response.statusCode !== 200) throw fromHttpStatus(response.statusCode, response.text);
    const parsed = TgiTokenizeResponseSchema.safeParse(http.parseJson(response.text, '/tokenize'));
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
    close: http.close,
  };
}
