import type { Engine } from '../../core/engines';
import type { ChatMessage, SamplingOverrides } from '../../core/generation-options';

/** Sampler profiles map to explicit engine sampler parameters (OC-ADAPT-5010); only `v1` exists. */
export type SamplerProfileVersion = 'v1';

export interface CompletionRequest {
  readonly prompt: string;
  readonly maxTokens: number;
  readonly seed: number;
  readonly samplerProfile: SamplerProfileVersion;
  /** Pin a slot (determinism suite); the engine picks an idle one when absent. */
  readonly slotId?: number | undefined;
  /**
   * Reuse the slot's cached prompt prefix (a session's next turn, ORCH-3022). Off by default: a cached
   * prefix is evaluated with another batch shape, which breaks byte-exact determinism (engines.md §1.6).
   */
  readonly cachePrompt?: boolean | undefined;
  /** Sampler values over the profile's (an OpenAI request's temperature, top_p, stop). */
  readonly sampling?: SamplingOverrides | undefined;
}

export interface EngineToken {
  /** Normalized token text (detokenized, never a partial UTF-8 sequence). */
  readonly text: string;
  /** 0-based index of the token in this completion. */
  readonly index: number;
  /** The engine slot generating it, when the engine says; a cancel confirms that slot is free. */
  readonly slotId?: number | undefined;
}

export interface CompletionSummary {
  readonly tokensOut: number;
  readonly tokensIn: number;
  readonly stopReason: 'eos' | 'limit' | 'word' | 'none';
  /** Engine-reported decode time, when the engine reports one. */
  readonly decodeMs?: number | undefined;
  readonly slotId?: number | undefined;
  /** Tokens the slot holds in KV after the request (prompt + output), when the engine says. */
  readonly tokensCached?: number | undefined;
  /** Prompt tokens taken from the slot's cache instead of evaluated (llama.cpp `timings.cache_n`). */
  readonly promptTokensFromCache?: number | undefined;
}

export interface EngineProperties {
  readonly totalSlots: number;
  /** e.g. `b6881-8b11deea4` from llama-server's build_info (ORCH-3032). */
  readonly engineVersion: string;
  /** Context window per slot, in tokens. */
  readonly contextSize: number;
  readonly modelPath?: string | undefined;
}

export interface EngineHealth {
  readonly live: boolean;
  readonly ready: boolean;
  readonly detail?: string | undefined;
}

export interface SlotState {
  readonly id: number;
  readonly isProcessing: boolean;
  /** The slot's context window in tokens, when the engine says (llama-server `n_ctx`). */
  readonly contextTokens?: number | undefined;
  /**
   * Tokens the slot's KV holds now: a running task's prompt and what it generated so far, or what an idle
   * slot still caches from its last task (llama-server `n_prompt_tokens`). Absent when the engine does not say.
   */
  readonly heldTokens?: number | undefined;
}

/**
 * The internal engine contract (ORCH-3054): health, properties, completion stream, cancel and
 * metrics scrape. Shared code reads capability fields; it never branches on the engine name.
 */
export interface EngineAdapterV1 {
  readonly specificationVersion: 'v1';
  readonly engine: Engine;
  health(signal?: AbortSignal): Promise<EngineHealth>;
  properties(signal?: AbortSignal): Promise<EngineProperties>;
  slots(signal?: AbortSignal): Promise<readonly SlotState[]>;
  /**
   * Streams tokens; the generator's return value is the summary. Aborting `signal` closes the
   * engine connection (llama.cpp's only cancel mechanism) and ends the generator with an AbortError.
   */
  complete(request: CompletionRequest, signal: AbortSignal): AsyncGenerator<EngineToken, CompletionSummary, void>;
  /** After an abort: waits until the engine reports the slot free, or throws when `timeoutMs` passes. */
  confirmSlotFree(slotId: number | undefined, timeoutMs: number): Promise<void>;
  /** The prompt the model's own chat template makes of `messages`, ending with the assistant's turn (llama-server `POST /apply-template`). */
  applyChatTemplate(messages: readonly ChatMessage[], signal?: AbortSignal): Promise<string>;
  /**
   * The prompt's tokens as a completion of `prompt` would count them — the model's special tokens (BOS)
   * added and special-token text parsed, as `complete` sends it (llama-server `POST /tokenize`). Admission
   * checks prompt + max_tokens against ctx with it (ORCH-3015).
   */
  tokenize(prompt: string, signal?: AbortSignal): Promise<readonly number[]>;
  /** Drops the KV a slot holds (llama-server `POST /slots/<id>?action=erase`); the slot must be idle. */
  eraseSlot(slotId: number, signal?: AbortSignal): Promise<void>;
  /** Engine-native Prometheus text (llama-server `--metrics`). */
  scrapeMetrics(signal?: AbortSignal): Promise<string>;
  /** Releases the adapter's connections. */
  close(): Promise<void>;
}
