import type { Engine } from '../../core/engines';
import type { ChatMessage, SamplingOverrides } from '../../core/generation-options';

/** Sampler profiles map to explicit engine sampler parameters (OC-ADAPT-5010); only `v1` exists. */
export type SamplerProfileVersion = 'v1';

/** An OpenAI chat's messages, which the engine renders with the model's own chat template (capability `chatTemplate`). */
export interface ChatPrompt {
  readonly chat: readonly ChatMessage[];
}

/** A raw text prompt, or a chat the engine renders. */
export type PromptInput = string | ChatPrompt;

export interface CompletionRequest {
  readonly prompt: PromptInput;
  readonly maxTokens: number;
  readonly seed: number;
  readonly samplerProfile: SamplerProfileVersion;
  /** Pin a slot (determinism suite, sessions); honoured where the engine declares `slotPinning`, else ignored. */
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

/** The load an engine reports, for admission and placement policies; null where the engine does not say. */
export interface EngineLoad {
  /** KV cache in use, per mille of what the engine holds for sequences. */
  readonly kvUsedPermille: number | null;
  /** Tokens of the requests running now: their prompts and what they generated so far. */
  readonly inflightTokens: number | null;
}

export const UNKNOWN_ENGINE_LOAD: EngineLoad = { kvUsedPermille: null, inflightTokens: null };

/**
 * What a fixed seed buys on an engine (ORCH-3045), measured per engine (.specs/engines/):
 * - `byte_exact_single_sequence`: the same request gives the same tokens whenever the engine runs one sequence at
 *   a time (llama-server with one slot); more sequences share batches and the claim ends there.
 * - `seeded_sequential`: the same request sent alone gives the same tokens; under concurrency it may not.
 * - `none`: no claim.
 */
export type DeterminismSupport = 'byte_exact_single_sequence' | 'seeded_sequential' | 'none';

/**
 * What an engine can do beyond the core contract, declared by its adapter. Shared code reads these (and
 * the presence of the optional members they name); it never branches on the engine's name.
 */
export interface EngineCapabilities {
  /** `complete` runs on the slot `request.slotId` names (llama-server `id_slot`): sessions and the determinism suite pin. */
  readonly slotPinning: boolean;
  /** `request.cachePrompt` reuses a slot's cached prefix (sessions' next turn, ORCH-3022). */
  readonly promptCache: boolean;
  /** `complete` accepts a `ChatPrompt` and renders it with the model's template. */
  readonly chatTemplate: boolean;
  readonly determinism: DeterminismSupport;
}

/** Per-slot introspection and KV control (llama-server GET /slots, POST /slots/<id>?action=erase). */
export interface SlotControl {
  list(signal?: AbortSignal): Promise<readonly SlotState[]>;
  /** Drops the KV a slot holds; the slot must be idle. Absent where the engine cannot. */
  readonly erase?: ((slotId: number, signal?: AbortSignal) => Promise<void>) | undefined;
}

/** The engine's own Prometheus endpoint. */
export interface NativeMetrics {
  scrape(signal?: AbortSignal): Promise<string>;
  /** Tokens the engine says it generated since it started, read from scraped text; undefined when absent. */
  generatedTokens(text: string): number | undefined;
}

/**
 * The internal engine contract (ORCH-3054), version 2. Every adapter: health, properties, a completion
 * stream, confirming an abort stopped the engine's work, close. Optional members are capabilities (absent =
 * the engine cannot): slot control, prompt token counting, native metrics, load reading.
 *
 * Migration from v1 (llama.cpp only): `confirmSlotFree` → `confirmStopped`; `slots`/`eraseSlot` →
 * `slotControl.list`/`.erase`; `applyChatTemplate` + `tokenize` → a `ChatPrompt` passed to `complete` and
 * `countPromptTokens`; `scrapeMetrics` → `nativeMetrics.scrape`; the load sampler's reading of /slots →
 * `readLoad`. docs/adding-an-engine.md walks through writing one.
 */
export interface EngineAdapter {
  readonly specificationVersion: 'v2';
  readonly engine: Engine;
  readonly capabilities: EngineCapabilities;
  health(signal?: AbortSignal): Promise<EngineHealth>;
  properties(signal?: AbortSignal): Promise<EngineProperties>;
  /**
   * Streams tokens; the generator's return value is the summary. Aborting `signal` (or stopping early) closes
   * the engine connection, which is how every supported engine cancels, and ends the generator with an AbortError.
   */
  complete(request: CompletionRequest, signal: AbortSignal): AsyncGenerator<EngineToken, CompletionSummary, void>;
  /**
   * After an abort: resolves once the engine no longer works on the aborted request (its slot, or its sequence,
   * is free), throws WORKER_RESET when `timeoutMs` passes. `slotId` is the slot the request ran on, where known.
   */
  confirmStopped(slotId: number | undefined, timeoutMs: number): Promise<void>;
  /**
   * The prompt's tokens as `complete` would count them — special tokens added, a chat rendered by the template
   * first. Admission checks prompt + max_tokens against ctx with it (ORCH-3015). Absent: admission cannot count.
   */
  readonly countPromptTokens?: ((prompt: PromptInput, signal?: AbortSignal) => Promise<number>) | undefined;
  readonly slotControl?: SlotControl | undefined;
  readonly nativeMetrics?: NativeMetrics | undefined;
  /** The engine's load now (kv use, in-flight tokens). */
  readonly readLoad?: ((signal?: AbortSignal) => Promise<EngineLoad>) | undefined;
  /** Releases the adapter's connections. */
  close(): Promise<void>;
}
