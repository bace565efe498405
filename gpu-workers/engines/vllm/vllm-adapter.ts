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
import type { ChatMessage } from '../../../core/generation-options';
import { prometheusValue } from '../prometheus-sample';
import { ModelsSchema, TokenizeSchema, VersionSchema } from './vllm-api-types';
import { fromHttpStatus, fromTransportFailure, workerReset } from './vllm-errors';
import { buildVllmCompletionBody } from './vllm-request-body';
import { readVllmStream } from './vllm-stream';
import type { StreamProgress } from './vllm-stream';

/** `baseUrl` is the OpenAI-compatible server's, e.g. `http://127.0.0.1:8000`. */
export interface VllmAdapterOptions extends EngineHttpOptions {
  /**
   * Sequences the engine runs at once (`--max-num-seqs`), reported as its slots. vLLM does not publish it
   * (not in /v1/models nor /metrics), so the launcher that chose it says; 1 when nobody does.
   */
  readonly maxNumSeqs?: number | undefined;
  /** confirmStopped's polling interval. Default 20 ms. */
  readonly pollIntervalMs?: number | undefined;
}

/**
 * What vLLM does (.specs/engines/vllm.md): no slots to pin or erase (the scheduler places sequences), no
 * prompt cache a request can opt into (automatic prefix caching is the server's; measured not to change
 * output), chat templates applied by the server (/tokenize with messages), and a fixed seed that repeats a
 * request's tokens when it runs alone, measured on vLLM 0.32 CPU; concurrent sequences share batches and
 * the measured CPU runs kept their output, but vLLM promises nothing there without batch invariance.
 */
export const VLLM_CAPABILITIES: EngineCapabilities = {
  slotPinning: false,
  promptCache: false,
  chatTemplate: true,
  determinism: 'seeded_sequential',
};

const GENERATED_TOKENS_COUNTER = 'vllm:generation_tokens_total';
const RUNNING_GAUGE = 'vllm:num_requests_running';
const WAITING_GAUGE = 'vllm:num_requests_waiting';
/** 0–1; `vllm:gpu_cache_usage_perc` is its deprecated name, still read for older servers. */
const KV_USAGE_GAUGES = ['vllm:kv_cache_usage_perc', 'vllm:gpu_cache_usage_perc'] as const;

const DEFAULT_POLL_INTERVAL_MS = 20;

/**
 * The vLLM adapter (ORCH-3054, OC-ADAPT-5020) over its OpenAI-compatible server and its own routes:
 * `/health`, `/version`, `/v1/models`, `/tokenize`, `/metrics`. Every completion is one path: a streamed
 * `/v1/completions` of text, or of the token ids `/tokenize` made of a chat with the model's template.
 * Cancel is closing the connection, which vLLM turns into an abort of the request. undici without retries:
 * Temporal owns retries.
 */
export function createVllmAdapter(options: VllmAdapterOptions): EngineAdapter {
  const http = createEngineHttp(options, { fromHttpStatus, fromTransportFailure, workerReset });
  const pollIntervalMs = options.pollIntervalMs ?? DEFAULT_POLL_INTERVAL_MS;
  /** Streams this adapter has open: the engine runs at most these once every aborted one is gone. */
  const open = new Set<StreamProgress>();
  let servedModel: Promise<{ id: string; root: string | undefined; maxModelLen: number }> | undefined;

  /** The first served model: its name is what /v1/completions and /tokenize must be given. Read once. */
  function model(signal?: AbortSignal): Promise<{ id: string; root: string | undefined; maxModelLen: number }> {
    servedModel ??= (async () => {
      const parsed = ModelsSchema.safeParse(await http.callJson('GET', 'v1/models', undefined, signal));
      const first = parsed.success ? parsed.data.data[0] : undefined;
      if (!first || first.max_model_len == null) throw workerReset('/v1/models lists no model with max_model_len');
      return { id: first.id, root: first.root ?? undefined, maxModelLen: first.max_model_len };
    })();
    // A failed read is asked again next time.
    servedModel.catch(() => {
      servedModel = undefined;
    });
    return servedModel;
  }

  // vLLM's HTTP server starts after the engine has loaded; 503 means the engine core died (EngineDeadError).
  function health(signal?: AbortSignal): Promise<EngineHealth> {
    return readHealth(http, 'health', signal, (text) => (text.length > 0 ? text.slice(0, 200) : undefined));
  }


  async function properties(signal?: AbortSignal): Promise<EngineProperties> {
    const version = VersionSchema.safeParse(await http.callJson('GET', 'version', undefined, signal));
    if (!version.success) throw workerReset(`unexpected /version answer: ${version.error.message}`);
    const served = await model(signal);
    return { totalSlots: options.maxNumSeqs ?? 1, engineVersion: version.data.version, contextSize: served.maxModelLen, modelPath: served.root };
  }

  async function tokenize(body: Record<string, unknown>, signal?: AbortSignal): Promise<readonly number[]> {
    const served = await model(signal);
    const parsed = TokenizeSchema.safeParse(await http.callJson('POST', 'tokenize', { model: served.id, ...body }, signal));
    if (!parsed.success) throw workerReset(`unexpected /tokenize answer: ${parsed.error.message}`);
    return parsed.data.tokens;
  }

  /** A chat as vLLM's /v1/chat/completions would prompt the model: its template, the assistant's turn opened. */
  function chatTokens(messages: readonly ChatMessage[], signal?: AbortSignal): Promise<readonly number[]> {
    return tokenize({ messages, add_generation_prompt: true, add_special_tokens: false }, signal);
  }

  async function countPromptTokens(prompt: PromptInput, signal?: AbortSignal): Promise<number> {
    // As /v1/completions tokenizes a text prompt: the tokenizer's special tokens added.
    const tokens = typeof prompt === 'string' ? await tokenize({ prompt, add_special_tokens: true }, signal) : await chatTokens(prompt.chat, signal);
    return tokens.length;
  }

  async function* complete(completion: CompletionRequest, signal: AbortSignal): AsyncGenerator<EngineToken, CompletionSummary, void> {
    const served = await model(signal);
    const prompt = typeof completion.prompt === 'string' ? completion.prompt : await chatTokens(completion.prompt.chat, signal);
    const progress: StreamProgress = { promptTokens: typeof prompt === 'string' ? 0 : prompt.length, generatedTokens: 0 };
    open.add(progress);
    try {
      // Aborted, failed or stopped early: closing the socket is what makes vLLM abort the request.
      const body = buildVllmCompletionBody(completion, served.id, prompt);
      return yield* http.stream('v1/completions', body, signal, (events) => readVllmStream(events, signal, progress));
    } finally {
      open.delete(progress);
    }
  }

  async function scrape(signal?: AbortSignal, timeoutMs?: number): Promise<string> {
    const response = await http.call('GET', 'metrics', undefined, signal, timeoutMs);
    if (response.statusCode !== 200) throw fromHttpStatus(response.statusCode, response.text);
    return response.text;
  }

  /**
   * vLLM has no per-request state to ask about over HTTP, but it counts the requests it runs and queues.
   * Every request of this engine's replica goes through this adapter, so once running + waiting is no more
   * than the streams still open here, the aborted ones are gone (measured: ~25 ms after the socket closes).
   */
  async function confirmStopped(_slotId: number | undefined, timeoutMs: number): Promise<void> {
    await pollUntil({
      timeoutMs,
      intervalMs: pollIntervalMs,
      controlTimeoutMs: http.controlTimeoutMs,
      read: (budgetMs) => scrape(undefined, budgetMs),
      check: (text) => {
        const inEngine = (prometheusValue(text, RUNNING_GAUGE) ?? 0) + (prometheusValue(text, WAITING_GAUGE) ?? 0);
        return inEngine <= open.size ? undefined : `${inEngine} requests in the engine, ${open.size} streams open`;
      },
      timedOut: (lastSeen) => workerReset(`aborted request not confirmed gone within ${timeoutMs} ms (${lastSeen})`),
    });
  }

  async function readLoad(signal?: AbortSignal): Promise<EngineLoad> {
    const text = await scrape(signal);
    let usage: number | undefined;
    for (const name of KV_USAGE_GAUGES) usage ??= prometheusValue(text, name);
    let inflight = 0;
    for (const stream of open) inflight += stream.promptTokens + stream.generatedTokens;
    return { kvUsedPermille: usage === undefined ? null : Math.min(1000, Math.round(usage * 1000)), inflightTokens: inflight };
  }

  return {
    specificationVersion: 'v2',
    engine: 'vllm',
    capabilities: VLLM_CAPABILITIES,
    health,
    properties,
    complete,
    confirmStopped,
    countPromptTokens,
    nativeMetrics: { scrape: (signal?: AbortSignal) => scrape(signal), generatedTokens: (text) => prometheusValue(text, GENERATED_TOKENS_COUNTER) },
    readLoad,
    close: http.close,
  };
}
