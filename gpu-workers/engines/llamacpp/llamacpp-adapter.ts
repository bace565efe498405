import { performance } from 'node:perf_hooks';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request } from 'undici';
import type { Dispatcher } from 'undici';
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
import { parseSseEvents } from './sse-events';

export interface LlamaCppAdapterOptions {
  /** llama-server's base URL, e.g. `http://127.0.0.1:8080`; a path prefix is kept. */
  readonly baseUrl: string;
  /** Injected for tests or shared pools; the adapter then leaves its lifecycle to the caller. */
  readonly dispatcher?: Dispatcher | undefined;
  /** Deadline for each health, props, slots and metrics call. Default 5 s. */
  readonly controlTimeoutMs?: number | undefined;
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

interface TextResponse {
  readonly statusCode: number;
  readonly text: string;
}

const DEFAULT_CONTROL_TIMEOUT_MS = 5_000;
const DEFAULT_SLOT_POLL_INTERVAL_MS = 20;
/** Idle keep-alive sockets are kept this long (llama-server's own idle timeout is longer). */
const KEEP_ALIVE_TIMEOUT_MS = 4_000;

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

/**
 * The llama.cpp `llama-server` adapter over its native API (ORCH-3054, OC-ADAPT-5001). undici
 * without retries: Temporal owns retries, and a retried completion would duplicate tokens.
 */
export function createLlamaCppAdapter(options: LlamaCppAdapterOptions): LlamaCppAdapter {
  const base = options.baseUrl.endsWith('/') ? options.baseUrl : `${options.baseUrl}/`;
  let ownAgent: Agent | undefined;
  const dispatcher: Dispatcher = options.dispatcher ?? (ownAgent = new Agent({ keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS }));
  const controlTimeoutMs = options.controlTimeoutMs ?? DEFAULT_CONTROL_TIMEOUT_MS;
  const slotPollIntervalMs = options.slotPollIntervalMs ?? DEFAULT_SLOT_POLL_INTERVAL_MS;
  const url = (path: string): URL => new URL(path, base);

  async function getText(path: string, signal: AbortSignal | undefined, timeoutMs = controlTimeoutMs): Promise<TextResponse> {
    // undici reads a 0 timeout as "none"; a control call always has one.
    const deadlineMs = Math.max(1, Math.round(timeoutMs));
    try {
      const response = await request(url(path), {
        method: 'GET',
        dispatcher,
        signal: signal ?? null,
        headersTimeout: deadlineMs,
        bodyTimeout: deadlineMs,
      });
      return { statusCode: response.statusCode, text: await response.body.text() };
    } catch (error) {
      throw fromTransportFailure(error, signal);
    }
  }

  async function getJson(path: string, signal: AbortSignal | undefined, timeoutMs?: number): Promise<unknown> {
    const response = await getText(path, signal, timeoutMs);
    if (response.statusCode !== 200) throw fromHttpStatus(response.statusCode, response.text);
    return parseJson(response.text, `/${path}`);
  }

  async function slots(signal?: AbortSignal, timeoutMs?: number): Promise<readonly SlotState[]> {
    const parsed = SlotsSchema.safeParse(await getJson('slots', signal, timeoutMs));
    if (!parsed.success) throw workerReset(`unexpected /slots answer: ${parsed.error.message}`);
    return parsed.data.map((slot) => ({
      id: slot.id,
      isProcessing: slot.is_processing ?? (slot.state != null && slot.state !== 0),
      contextTokens: slot.n_ctx ?? undefined,
      heldTokens: slot.n_prompt_tokens ?? undefined,
    }));
  }

  async function health(signal?: AbortSignal): Promise<EngineHealth> {
    let response: TextResponse;
    try {
      response = await getText('health', signal);
    } catch (error) {
      if (signal?.aborted === true) throw error;
      return { live: false, ready: false, detail: error instanceof Error ? error.message : String(error) };
    }
    if (response.statusCode === 200) return { live: true, ready: true };
    // 503 while the model loads (ORCH-3002): the process is up, not yet ready.
    let detail = `HTTP ${response.statusCode}`;
    try {
      const envelope = ErrorEnvelopeSchema.safeParse(JSON.parse(response.text));
      if (envelope.success && envelope.data.error.message != null) detail = `${detail}: ${envelope.data.error.message}`;
    } catch {
      // Not JSON: the status says enough.
    }
    return { live: true, ready: false, detail };
  }

  async function properties(signal?: AbortSignal): Promise<EngineProperties> {
    const parsed = PropsSchema.safeParse(await getJson('props', signal));
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
    let response: Dispatcher.ResponseData;
    try {
      response = await request(url('completion'), {
        method: 'POST',
        dispatcher,
        signal,
        headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
        body: JSON.stringify(buildCompletionBody(completion, prompt)),
      });
    } catch (error) {
      throw fromTransportFailure(error, signal);
    }
    let completed = false;
    try {
      if (response.statusCode !== 200) throw fromHttpStatus(response.statusCode, await response.body.text());
      const summary = yield* readCompletionStream(parseSseEvents(bodyChunks(response.body)), signal);
      completed = true;
      return summary;
    } catch (error) {
      throw fromTransportFailure(error, signal);
    } finally {
      if (completed) {
        // The final chunk is in; let the body end on its own so the socket stays in the keep-alive pool.
        response.body.on('error', () => undefined).resume();
      } else {
        // Aborted, failed, or the consumer stopped early: closing the socket is what cancels the
        // generation in llama-server (engines.md §1.5), so do it now rather than on garbage collection.
        response.body.destroy();
      }
    }
  }

  async function confirmStopped(slotId: number | undefined, timeoutMs: number): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    let lastSeen = 'no answer yet';
    for (;;) {
      let states: readonly SlotState[] | undefined;
      try {
        states = await slots(undefined, Math.min(controlTimeoutMs, Math.max(1, deadline - performance.now())));
      } catch (error) {
        // The engine may be restarting or briefly unreachable: keep asking until the deadline.
        lastSeen = error instanceof Error ? error.message : String(error);
      }
      if (states !== undefined) {
        const watched = slotId === undefined ? states : states.filter((slot) => slot.id === slotId);
        if (slotId !== undefined && watched.length === 0) {
          // A caller bug, not an engine failure: retrying cannot make the slot exist.
          throw new OrchError(ErrorCode.INTERNAL, `llama.cpp: no slot ${slotId} (engine has ${states.length})`, { engine: 'llamacpp' });
        }
        const busy = watched.filter((slot) => slot.isProcessing);
        if (busy.length === 0) return;
        lastSeen = `still processing: slot ${busy.map((slot) => slot.id).join(', ')}`;
      }
      if (performance.now() + slotPollIntervalMs > deadline) {
        throw workerReset(`slot ${slotId ?? 'all'} not confirmed free within ${timeoutMs} ms (${lastSeen})`);
      }
      await sleep(slotPollIntervalMs);
    }
  }

  async function postControl(path: string, body: unknown, signal: AbortSignal | undefined): Promise<TextResponse> {
    const deadlineMs = Math.max(1, Math.round(controlTimeoutMs));
    try {
      const answer = await request(url(path), {
        method: 'POST',
        dispatcher,
        signal: signal ?? null,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
        headersTimeout: deadlineMs,
        bodyTimeout: deadlineMs,
      });
      return { statusCode: answer.statusCode, text: await answer.body.text() };
    } catch (error) {
      throw fromTransportFailure(error, signal);
    }
  }

  async function eraseSlot(slotId: number, signal?: AbortSignal): Promise<void> {
    const response = await postControl(`slots/${slotId}?action=erase`, {}, signal);
    // 501: llama-server runs without --slot-save-path, which the erase action needs.
    if (response.statusCode !== 200) throw fromHttpStatus(response.statusCode, response.text);
  }

  async function applyChatTemplate(messages: readonly ChatMessage[], signal?: AbortSignal): Promise<string> {
    const response = await postControl('apply-template', { messages }, signal);
    if (response.statusCode !== 200) throw fromHttpStatus(response.statusCode, response.text);
    const parsed = AppliedTemplateSchema.safeParse(parseJson(response.text, '/apply-template'));
    if (!parsed.success) throw workerReset(`unexpected /apply-template answer: ${parsed.error.message}`);
    return parsed.data.prompt;
  }

  async function tokenize(prompt: string, signal?: AbortSignal): Promise<readonly number[]> {
    // As POST /completion tokenizes a string prompt: the model's BOS/EOS added, special-token text parsed.
    const response = await postControl('tokenize', { content: prompt, add_special: true, parse_special: true }, signal);
    if (response.statusCode !== 200) throw fromHttpStatus(response.statusCode, response.text);
    const parsed = TokenizeSchema.safeParse(parseJson(response.text, '/tokenize'));
    if (!parsed.success) throw workerReset(`unexpected /tokenize answer: ${parsed.error.message}`);
    return parsed.data.tokens;
  }

  async function scrapeMetrics(signal?: AbortSignal): Promise<string> {
    const response = await getText('metrics', signal);
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
    close: async () => {
      await ownAgent?.close();
    },
  };
}
