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
import { samplerParameters } from '../llamacpp/sampler-profiles';
import { parseSseEvents } from '../llamacpp/sse-events';
import { readGenerateStream } from './generate-stream';
import { ModelConfigSchema, ServerMetadataSchema, TokenCountSchema } from './triton-api-types';
import type { ModelConfig } from './triton-api-types';
import { fromHttpStatus, fromTransportFailure, workerReset } from './triton-errors';

export interface TritonAdapterOptions {
  /** Triton's HTTP endpoint, e.g. `http://127.0.0.1:8000`. */
  readonly baseUrl: string;
  /** The decoupled model that generates (`/v2/models/<modelName>/generate_stream`). */
  readonly modelName: string;
  /** Triton's Prometheus endpoint, e.g. `http://127.0.0.1:8002/metrics` (its own port). */
  readonly metricsUrl: string;
  readonly dispatcher?: Dispatcher | undefined;
  /** Deadline for each health, metadata, tokenize and metrics call. Default 5 s. */
  readonly controlTimeoutMs?: number | undefined;
  /** confirmStopped's polling interval. Default 20 ms. */
  readonly pollIntervalMs?: number | undefined;
}

/**
 * The generating model is ours (gpu-workers/engines/triton/server/llamacpp_model.py): it runs a llama-server
 * on one slot per sequence and renders chats with the model's template (`chat_messages`). Triton exposes no
 * slots, so nothing is pinned and no prompt cache is reused; the determinism is the wrapped engine's, measured
 * byte-exact with one sequence (.specs/engines/triton.md).
 */
export const TRITON_CAPABILITIES: EngineCapabilities = {
  slotPinning: false,
  promptCache: false,
  chatTemplate: true,
  determinism: 'byte_exact_single_sequence',
};

/** Metrics our model publishes through Triton's custom-metrics API, labelled by `model`. */
export const TRITON_MODEL_METRICS = {
  activeSequences: 'orch_triton_model_active_sequences',
  generatedTokens: 'orch_triton_model_generated_tokens_total',
  inflightTokens: 'orch_triton_model_inflight_tokens',
} as const;
/** Triton's own per-model gauge: requests queued, not yet executing (0 while a decoupled model streams). */
const PENDING_REQUESTS = 'nv_inference_pending_request_count';

const DEFAULT_CONTROL_TIMEOUT_MS = 5_000;
const DEFAULT_POLL_INTERVAL_MS = 20;
const KEEP_ALIVE_TIMEOUT_MS = 4_000;

interface TextResponse {
  readonly statusCode: number;
  readonly text: string;
}

/** Readable's async iterator, told not to destroy the body when the consumer stops early. */
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

/** The value of `name{…model="<model>"…}` in Prometheus text; undefined when there is no such sample. */
export function modelSample(text: string, name: string, model: string): number | undefined {
  const label = `model="${model}"`;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    const close = line.indexOf('}');
    if (close < 0 || !line.slice(name.length + 1, close).split(',').includes(label)) continue;
    const value = Number(line.slice(close + 1).trim().split(/\s+/)[0]);
    if (Number.isFinite(value)) return value;
  }
  return undefined;
}

function parameter(config: ModelConfig, key: string): string | undefined {
  const value = config.parameters?.[key]?.string_value;
  return value == null || value === '' ? undefined : value;
}

function positiveInteger(config: ModelConfig, key: string): number {
  const text = parameter(config, key);
  const value = text === undefined ? Number.NaN : Number(text);
  if (!Number.isInteger(value) || value < 1) throw workerReset(`the model publishes no ${key} parameter (a positive integer) in its config`);
  return value;
}

/** The generate_stream body: tensors our model declares (TensorRT-LLM ensemble names where one exists). */
export function buildGenerateBody(completion: CompletionRequest): Record<string, unknown> {
  const profile = samplerParameters(completion.samplerProfile);
  return {
    ...(typeof completion.prompt === 'string' ? { text_input: completion.prompt } : { chat_messages: JSON.stringify(completion.prompt.chat) }),
    max_tokens: completion.maxTokens,
    random_seed: completion.seed,
    temperature: completion.sampling?.temperature ?? profile.temperature,
    top_k: profile.top_k,
    top_p: completion.sampling?.top_p ?? profile.top_p,
    min_p: profile.min_p,
    repetition_penalty: profile.repeat_penalty,
    samplers: profile.samplers.join(';'),
    ...(completion.sampling?.stop === undefined ? {} : { stop_words: completion.sampling.stop }),
  };
}

/**
 * Triton Inference Server through its KServe v2 API and generate extension (ORCH-3054, OC-ADAPT-5001;
 * .specs/engines/triton.md): health from /v2/health/*, engine version from GET /v2, context and sequences from
 * the model's published config, tokens from generate_stream. Closing the stream cancels the request: Triton
 * marks it cancelled and our model stops its engine. undici without retries: Temporal owns retries.
 */
export function createTritonAdapter(options: TritonAdapterOptions): EngineAdapter {
  const base = options.baseUrl.endsWith('/') ? options.baseUrl : `${options.baseUrl}/`;
  const model = encodeURIComponent(options.modelName);
  let ownAgent: Agent | undefined;
  const dispatcher: Dispatcher = options.dispatcher ?? (ownAgent = new Agent({ keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS }));
  const controlTimeoutMs = options.controlTimeoutMs ?? DEFAULT_CONTROL_TIMEOUT_MS;
  const pollIntervalMs = options.pollIntervalMs ?? DEFAULT_POLL_INTERVAL_MS;
  /** Streams this adapter has open: on a Triton of its own, the model runs at most these once a cancel is done. */
  let openStreams = 0;
  let modelConfig: Promise<ModelConfig> | undefined;

  async function call(target: string | URL, method: 'GET' | 'POST', signal: AbortSignal | undefined, body?: unknown): Promise<TextResponse> {
    const deadlineMs = Math.max(1, Math.round(controlTimeoutMs));
    try {
      const response = await request(typeof target === 'string' ? new URL(target, base) : target, {
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

  async function getJson(path: string, signal: AbortSignal | undefined): Promise<unknown> {
    const response = await call(path, 'GET', signal);
    if (response.statusCode !== 200) throw fromHttpStatus(response.statusCode, response.text);
    return parseJson(response.text, `/${path}`);
  }

  function config(signal?: AbortSignal): Promise<ModelConfig> {
    modelConfig ??= getJson(`v2/models/${model}/config`, signal).then(
      (value) => {
        const parsed = ModelConfigSchema.safeParse(value);
        if (!parsed.success) throw workerReset(`unexpected model config: ${parsed.error.message}`);
        return parsed.data;
      },
      (error: unknown) => {
        modelConfig = undefined;
        throw error;
      },
    );
    return modelConfig;
  }

  async function health(signal?: AbortSignal): Promise<EngineHealth> {
    // Triton answers health with a status and an empty body (.specs/engines/triton.md).
    const status = async (path: string): Promise<number | string> => {
      try {
        return (await call(path, 'GET', signal)).statusCode;
      } catch (error) {
        if (signal?.aborted === true) throw error;
        return error instanceof Error ? error.message : String(error);
      }
    };
    const live = await status('v2/health/live');
    if (live !== 200) return { live: false, ready: false, detail: typeof live === 'number' ? `live: HTTP ${live}` : live };
    const ready = await status('v2/health/ready');
    if (ready !== 200) return { live: true, ready: false, detail: `server ready: ${typeof ready === 'number' ? `HTTP ${ready}` : ready}` };
    const modelReady = await status(`v2/models/${model}/ready`);
    if (modelReady !== 200) return { live: true, ready: false, detail: `model ${options.modelName} ready: ${typeof modelReady === 'number' ? `HTTP ${modelReady}` : modelReady}` };
    return { live: true, ready: true };
  }

  async function properties(signal?: AbortSignal): Promise<EngineProperties> {
    const server = ServerMetadataSchema.safeParse(await getJson('v2', signal));
    if (!server.success || server.data.version == null) throw workerReset('GET /v2 names no server version');
    const published = await config(signal);
    if (published.model_transaction_policy?.decoupled !== true) throw workerReset(`model ${options.modelName} is not decoupled: it cannot stream tokens through generate_stream`);
    const build = parameter(published, 'engine_build');
    return {
      totalSlots: positiveInteger(published, 'max_sequences'),
      // ORCH-3032: the server's own version, and the generating engine's build where the model names it.
      engineVersion: `${server.data.name ?? 'triton'}-${server.data.version}${build === undefined ? '' : `+${build}`}`,
      contextSize: positiveInteger(published, 'context_length'),
      modelPath: parameter(published, 'model_path'),
    };
  }

  async function* complete(completion: CompletionRequest, signal: AbortSignal): AsyncGenerator<EngineToken, CompletionSummary, void> {
    openStreams++;
    try {
      let response: Dispatcher.ResponseData;
      try {
        response = await request(new URL(`v2/models/${model}/generate_stream`, base), {
          method: 'POST',
          dispatcher,
          signal,
          headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
          body: JSON.stringify(buildGenerateBody(completion)),
        });
      } catch (error) {
        throw fromTransportFailure(error, signal);
      }
      let completed = false;
      try {
        if (response.statusCode !== 200) throw fromHttpStatus(response.statusCode, await response.body.text());
        const summary = yield* readGenerateStream(parseSseEvents(bodyChunks(response.body)), signal);
        completed = true;
        return summary;
      } catch (error) {
        throw fromTransportFailure(error, signal);
      } finally {
        if (completed) response.body.on('error', () => undefined).resume();
        // Closing the connection is the cancel: Triton marks the request cancelled and the model stops.
        else response.body.on('error', () => undefined).destroy();
      }
    } finally {
      openStreams--;
    }
  }

  async function scrape(signal?: AbortSignal): Promise<string> {
    const response = await call(new URL(options.metricsUrl), 'GET', signal);
    if (response.statusCode !== 200) throw fromHttpStatus(response.statusCode, response.text);
    return response.text;
  }

  /**
   * After an abort: waits until the model's active-sequence gauge is at most the streams this adapter still
   * has open (the model lowers it only once its engine let the slot go). A model without that gauge leaves
   * Triton's pending-request count, which cannot see decoupled work that already runs: a weaker check.
   */
  async function confirmStopped(_slotId: number | undefined, timeoutMs: number): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    let lastSeen = 'no answer yet';
    for (;;) {
      try {
        const text = await scrape(AbortSignal.timeout(Math.max(1, Math.round(Math.min(controlTimeoutMs, deadline - performance.now())))));
        const active = modelSample(text, TRITON_MODEL_METRICS.activeSequences, options.modelName);
        if (active !== undefined) {
          if (active <= openStreams) return;
          lastSeen = `${TRITON_MODEL_METRICS.activeSequences} ${active} with ${openStreams} stream(s) open`;
        } else {
          const pending = modelSample(text, PENDING_REQUESTS, options.modelName) ?? 0;
          if (pending === 0) return;
          lastSeen = `${PENDING_REQUESTS} ${pending}`;
        }
      } catch (error) {
        lastSeen = error instanceof Error ? error.message : String(error);
      }
      if (performance.now() + pollIntervalMs > deadline) throw workerReset(`model ${options.modelName} still running the aborted request after ${timeoutMs} ms (${lastSeen})`);
      await sleep(pollIntervalMs);
    }
  }

  async function countPromptTokens(prompt: PromptInput, signal?: AbortSignal): Promise<number> {
    const tokenizer = parameter(await config(signal), 'tokenizer_model');
    if (tokenizer === undefined) throw workerReset(`model ${options.modelName} publishes no tokenizer_model: prompts cannot be counted`);
    const body = typeof prompt === 'string' ? { text_input: prompt } : { chat_messages: JSON.stringify(prompt.chat) };
    const response = await call(`v2/models/${encodeURIComponent(tokenizer)}/generate`, 'POST', signal, body);
    if (response.statusCode !== 200) throw fromHttpStatus(response.statusCode, response.text);
    const parsed = TokenCountSchema.safeParse(parseJson(response.text, `${tokenizer}/generate`));
    if (!parsed.success) throw workerReset(`unexpected tokenizer answer: ${parsed.error.message}`);
    return parsed.data.prompt_tokens;
  }

  async function readLoad(signal?: AbortSignal): Promise<EngineLoad> {
    const inflight = modelSample(await scrape(signal), TRITON_MODEL_METRICS.inflightTokens, options.modelName);
    return { kvUsedPermille: null, inflightTokens: inflight ?? null };
  }

  return {
    specificationVersion: 'v2',
    engine: 'triton',
    capabilities: TRITON_CAPABILITIES,
    health,
    properties,
    complete,
    confirmStopped,
    countPromptTokens,
    nativeMetrics: { scrape, generatedTokens: (text) => modelSample(text, TRITON_MODEL_METRICS.generatedTokens, options.modelName) },
    readLoad,
    close: async () => {
      await ownAgent?.close();
    },
  };
}

/** The model a Triton URL names when it names none: the triton-server runtime's default `model_name`. */
export const DEFAULT_TRITON_MODEL = 'llm';

/**
 * The adapter for an external Triton: `url` is the model's URL, `http://host:8000/v2/models/<name>` (the server's
 * URL alone means model `llm`), with the metrics port as `?metrics_port=` (Triton's default 8002 when absent).
 */
export function createTritonAdapterFromUrl(url: string): EngineAdapter {
  const parsed = new URL(url);
  const match = /^\/v2\/models\/([^/]+)\/?$/.exec(parsed.pathname);
  if (match === null && parsed.pathname !== '/') throw new Error(`a Triton engine URL is http://host:port/v2/models/<name> (got ${url})`);
  const metrics = new URL(parsed.origin);
  metrics.port = parsed.searchParams.get('metrics_port') ?? '8002';
  metrics.pathname = '/metrics';
  const modelName = match?.[1] === undefined ? DEFAULT_TRITON_MODEL : decodeURIComponent(match[1]);
  return createTritonAdapter({ baseUrl: parsed.origin, modelName, metricsUrl: metrics.toString() });
}
