import { createEngineHttp, pollUntil } from '../engine-http';
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
import { samplerParameters } from '../llamacpp/sampler-profiles';
import { readGenerateStream } from './generate-stream';
import { ModelConfigSchema, ServerMetadataSchema, TokenCountSchema } from './triton-api-types';
import type { ModelConfig } from './triton-api-types';
import { fromHttpStatus, fromTransportFailure, workerReset } from './triton-errors';

/** `baseUrl` is Triton's HTTP endpoint, e.g. `http://127.0.0.1:8000`. */
export interface TritonAdapterOptions extends EngineHttpOptions {
  /** The decoupled model that generates (`/v2/models/<modelName>/generate_stream`). */
  readonly modelName: string;
  /** Triton's Prometheus endpoint, e.g. `http://127.0.0.1:8002/metrics` (its own port). */
  readonly metricsUrl: string;
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

const DEFAULT_POLL_INTERVAL_MS = 20;

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
  const http = createEngineHttp(options, { fromHttpStatus, fromTransportFailure, workerReset });
  const model = encodeURIComponent(options.modelName);
  const pollIntervalMs = options.pollIntervalMs ?? DEFAULT_POLL_INTERVAL_MS;
  /** Streams this adapter has open: on a Triton of its own, the model runs at most these once a cancel is done. */
  let openStreams = 0;
  let modelConfig: Promise<ModelConfig> | undefined;

  function config(signal?: AbortSignal): Promise<ModelConfig> {
    modelConfig ??= http.callJson('GET', `v2/models/${model}/config`, undefined, signal).then(
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
        return (await http.call('GET', path, undefined, signal)).statusCode;
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
    const server = ServerMetadataSchema.safeParse(await http.callJson('GET', 'v2', undefined, signal));
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
      // Closing the connection is the cancel: Triton marks the request cancelled and the model stops.
      const body = buildGenerateBody(completion);
      return yield* http.stream(`v2/models/${model}/generate_stream`, body, signal, (events) => readGenerateStream(events, signal));
    } finally {
      openStreams--;
    }
  }

  async function scrape(signal?: AbortSignal): Promise<string> {
    const response = await http.call('GET', new URL(options.metricsUrl), undefined, signal);
    if (response.statusCode !== 200) throw fromHttpStatus(response.statusCode, response.text);
    return response.text;
  }

  /**
   * After an abort: waits until the model's active-sequence gauge is at most the streams this adapter still
   * has open (the model lowers it only once its engine let the slot go). A model without that gauge leaves
   * Triton's pending-request count, which cannot see decoupled work that already runs: a weaker check.
   */
  async function confirmStopped(_slotId: number | undefined, timeoutMs: number): Promise<void> {
    await pollUntil({
      timeoutMs,
      intervalMs: pollIntervalMs,
      controlTimeoutMs: http.controlTimeoutMs,
      read: (budgetMs) => scrape(AbortSignal.timeout(Math.max(1, Math.round(budgetMs)))),
      check: (text) => {
        const active = modelSample(text, TRITON_MODEL_METRICS.activeSequences, options.modelName);
        if (active !== undefined) {
          return active <= openStreams ? undefined : `${TRITON_MODEL_METRICS.activeSequences} ${active} with ${openStreams} stream(s) open`;
        }
        const pending = modelSample(text, PENDING_REQUESTS, options.modelName) ?? 0;
        return pending === 0 ? undefined : `${PENDING_REQUESTS} ${pending}`;
      },
      timedOut: (lastSeen) => workerReset(`model ${options.modelName} still running the aborted request after ${timeoutMs} ms (${lastSeen})`),
    });
  }

  async function countPromptTokens(prompt: PromptInput, signal?: AbortSignal): Promise<number> {
    const tokenizer = parameter(await config(signal), 'tokenizer_model');
    if (tokenizer === undefined) throw workerReset(`model ${options.modelName} publishes no tokenizer_model: prompts cannot be counted`);
    const body = typeof prompt === 'string' ? { text_input: prompt } : { chat_messages: JSON.stringify(prompt.chat) };
    const response = await http.call('POST', `v2/models/${encodeURIComponent(tokenizer)}/generate`, body, signal);
    if (response.statusCode !== 200) throw fromHttpStatus(response.statusCode, response.text);
    const parsed = TokenCountSchema.safeParse(http.parseJson(response.text, `${tokenizer}/generate`));
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
    close: http.close,
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
