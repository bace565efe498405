import { createEngineHttp, pollUntil, readHealth } from '../engine-http';
import type { EngineHttpOptions } from '../engine-http';
import { prometheusValue } from '../prometheus-sample';
import { ErrorCode, OrchError } from '../../../core/errors';
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
  SlotState,
} from '../engine-adapter';
import { engineLoadOf } from './slot-load';
import { buildCompletionBody } from './completion-request-body';
import { readCompletionStream } from './completion-stream';
import { AppliedTemplateSchema, ErrorEnvelopeSchema, PropsSchema, SlotsSchema, TokenizeSchema } from './llamacpp-api-types';
import type { ChatMessage } from '../../../core/generation-options';
import { fromHttpStatus, fromTransportFailure, workerReset } from './llamacpp-errors';

/** `baseUrl` is llama-server's, e.g. `http://127.0.0.1:8080`. */
export interface LlamaCppAdapterOptions extends EngineHttpOptions {
  /** confirmSlotFree's polling interval. Default 20 ms. */
  readonly slotPollIntervalMs?: number | undefined;
}

/** llama-server's native API, as well as the shared contract: tests and the determinism suite read slots directly. */
export interface LlamaCppAdapter extends EngineAdapter {
  slots(signal?: AbortSignal): Promise<readonly SlotState[]>;
  eraseSlot(slotId: number, signal?: AbortSignal): Promise<void>;
  /** The prompt the model's own chat template makes of `messages`, ending with the assistant's turn (POST /apply-template). */
  applyChatTemplate(messages: readonly ChatMessage[], signal?: AbortSignal): Promise<string>;
  /** As POST /completion tokenizes a string prompt (POST /tokenize with the model's BOS added, special text parsed). */
  tokenize(prompt: string, signal?: AbortSignal): Promise<readonly number[]>;
  scrapeMetrics(signal?: AbortSignal): Promise<string>;
  /** Closes the keep-alive agent the adapter created; a no-op with an injected dispatcher. */
  close(): Promise<void>;
}

/**
 * What llama-server does (engines.md §1): slots pinned by `id_slot`, prompt cache per slot, chat templates via
 * /apply-template, and byte-exact output only with one slot (batches shared across slots change float order, §1.6).
 */
export const LLAMACPP_CAPABILITIES: EngineCapabilities = {
  slotPinning: true,
  promptCache: true,
  chatTemplate: true,
  determinism: 'byte_exact_single_sequence',
};

/** llama-server's counter of generated tokens (`--metrics`). */
const TOKENS_PREDICTED_COUNTER = 'llamacpp:tokens_predicted_total';

const DEFAULT_SLOT_POLL_INTERVAL_MS = 20;

/**
 * The llama.cpp `llama-server` adapter over its native API (ORCH-3054, OC-ADAPT-5001). undici
 * without retries: Temporal owns retries, and a retried completion would duplicate tokens.
 */
export function createLlamaCppAdapter(options: LlamaCppAdapterOptions): LlamaCppAdapter {
  const http = createEngineHttp(options, { fromHttpStatus, fromTransportFailure, workerReset });
  const slotPollIntervalMs = options.slotPollIntervalMs ?? DEFAULT_SLOT_POLL_INTERVAL_MS;

  async function slots(signal?: AbortSignal, timeoutMs?: number): Promise<readonly SlotState[]> {
    const parsed = SlotsSchema.safeParse(await http.callJson('GET', 'slots', undefined, signal, timeoutMs));
    if (!parsed.success) throw workerReset(`unexpected /slots answer: ${parsed.error.message}`);
    return parsed.data.map((slot) => ({
      id: slot.id,
      isProcessing: slot.is_processing ?? (slot.state != null && slot.state !== 0),
      contextTokens: slot.n_ctx ?? undefined,
      heldTokens: slot.n_prompt_tokens ?? undefined,
    }));
  }

  // 503 while the model loads (ORCH-3002): the process is up, not yet ready.
  function health(signal?: AbortSignal): Promise<EngineHealth> {
    return readHealth(http, 'health', signal, (text) => {
      const envelope = ErrorEnvelopeSchema.safeParse(JSON.parse(text));
      return envelope.success && envelope.data.error.message != null ? envelope.data.error.message : undefined;
    });
  }


  async function properties(signal?: AbortSignal): Promise<EngineProperties> {
    const parsed = PropsSchema.safeParse(await http.callJson('GET', 'props', undefined, signal));
    if (!parsed.success) throw workerReset(`unexpected /props answer: ${parsed.error.message}`);
    const props = parsed.data;
    const contextSize = props.default_generation_settings?.n_ctx ?? props.n_ctx;
    if (props.total_slots == null || contextSize == null) throw workerReset('/props lacks total_slots or n_ctx');
    return {
      totalSlots: props.total_slots,
      // ORCH-3032: build_info is "b<build>-<commit>"; it identifies the engine build.
      engineVersion: props.build_info ?? 'unknown',
      contextSize,
      modelPath: props.model_path ?? undefined,
    };
  }

  async function* complete(
    completion: CompletionRequest,
    signal: AbortSignal,
  ): AsyncGenerator<EngineToken, CompletionSummary, void> {
    // A chat: the engine renders the messages with the model's own template first (one extra loopback call).
    const prompt = typeof completion.prompt === 'string' ? completion.prompt : await applyChatTemplate(completion.prompt.chat, signal);
    // Aborted, failed, or the consumer stopped early: closing the socket is what cancels the generation in
    // llama-server (engines.md §1.5).
    return yield* http.stream('completion', buildCompletionBody(completion, prompt), signal, (events) => readCompletionStream(events, signal), {
      quietDestroy: false,
    });
  }

  async function confirmStopped(slotId: number | undefined, timeoutMs: number): Promise<void> {
    await pollUntil({
      timeoutMs,
      intervalMs: slotPollIntervalMs,
      controlTimeoutMs: http.controlTimeoutMs,
      read: (budgetMs) => slots(undefined, budgetMs),
      check: (states) => {
        const watched = slotId === undefined ? states : states.filter((slot) => slot.id === slotId);
        if (slotId !== undefined && watched.length === 0) {
          // A caller bug, not an engine failure: retrying cannot make the slot exist.
          throw new OrchError(ErrorCode.INTERNAL, `llama.cpp: no slot ${slotId} (engine has ${states.length})`, { engine: 'llamacpp' });
        }
        const busy = watched.filter((slot) => slot.isProcessing);
        return busy.length === 0 ? undefined : `still processing: slot ${busy.map((slot) => slot.id).join(', ')}`;
      },
      timedOut: (lastSeen) => workerReset(`slot ${slotId ?? 'all'} not confirmed free within ${timeoutMs} ms (${lastSeen})`),
    });
  }

  async function eraseSlot(slotId: number, signal?: AbortSignal): Promise<void> {
    const response = await http.call('POST', `slots/${slotId}?action=erase`, {}, signal);
    // 501: llama-server runs without --slot-save-path, which the erase action needs.
    if (response.statusCode !== 200) throw fromHttpStatus(response.statusCode, response.text);
  }

  async function applyChatTemplate(messages: readonly ChatMessage[], signal?: AbortSignal): Promise<string> {
    const response = await http.call('POST', 'apply-template', { messages }, signal);
    if (response.statusCode !== 200) throw fromHttpStatus(response.statusCode, response.text);
    const parsed = AppliedTemplateSchema.safeParse(http.parseJson(response.text, '/apply-template'));
    if (!parsed.success) throw workerReset(`unexpected /apply-template answer: ${parsed.error.message}`);
    return parsed.data.prompt;
  }

  async function tokenize(prompt: string, signal?: AbortSignal): Promise<readonly number[]> {
    // As POST /completion tokenizes a string prompt: the model's BOS/EOS added, special-token text parsed.
    const response = await http.call('POST', 'tokenize', { content: prompt, add_special: true, parse_special: true }, signal);
    if (response.statusCode !== 200) throw fromHttpStatus(response.statusCode, response.text);
    const parsed = TokenizeSchema.safeParse(http.parseJson(response.text, '/tokenize'));
    if (!parsed.success) throw workerReset(`unexpected /tokenize answer: ${parsed.error.message}`);
    return parsed.data.tokens;
  }

  async function scrapeMetrics(signal?: AbortSignal): Promise<string> {
    const response = await http.call('GET', 'metrics', undefined, signal);
    // 501 means llama-server runs without --metrics.
    if (response.statusCode !== 200) throw fromHttpStatus(response.statusCode, response.text);
    return response.text;
  }

  async function countPromptTokens(prompt: PromptInput, signal?: AbortSignal): Promise<number> {
    const text = typeof prompt === 'string' ? prompt : await applyChatTemplate(prompt.chat, signal);
    return (await tokenize(text, signal)).length;
  }

  async function readLoad(signal?: AbortSignal): Promise<EngineLoad> {
    return engineLoadOf(await slots(signal));
  }

  return {
    specificationVersion: 'v2',
    engine: 'llamacpp',
    capabilities: LLAMACPP_CAPABILITIES,
    health,
    properties,
    slots: (signal?: AbortSignal) => slots(signal),
    complete,
    confirmStopped,
    countPromptTokens,
    slotControl: { list: (signal?: AbortSignal) => slots(signal), erase: eraseSlot },
    nativeMetrics: { scrape: scrapeMetrics, generatedTokens: (text) => prometheusValue(text, TOKENS_PREDICTED_COUNTER) },
    readLoad,
    eraseSlot,
    applyChatTemplate,
    tokenize,
    scrapeMetrics,
    close: http.close,
  };
}
