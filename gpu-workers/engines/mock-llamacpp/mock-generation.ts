import type { ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { MockCompletionParams } from './mock-completion-request';
import type { MockSlot } from './mock-slot-pool';
import { SeededTokenSource, pieceJson, pieceText } from './mock-vocabulary';

/** Engine-wide counters, as llama-server's /metrics exposes them. */
export interface MockCounters {
  promptTokensTotal: number;
  promptSecondsTotal: number;
  tokensPredictedTotal: number;
  tokensPredictedSecondsTotal: number;
  completionsFinished: number;
  completionsCancelled: number;
}

export interface GenerationTiming {
  readonly ttftMs: number;
  readonly interTokenMs: number;
  /** Without it the mock never emits EOS: every completion runs to its token limit. */
  readonly emitEos: boolean;
  readonly modelName: string;
}

export type StopType = 'eos' | 'limit';

export interface MockTimings {
  readonly cache_n: number;
  readonly prompt_n: number;
  readonly prompt_ms: number;
  readonly prompt_per_token_ms: number;
  readonly prompt_per_second: number;
  readonly predicted_n: number;
  readonly predicted_ms: number;
  readonly predicted_per_token_ms: number;
  readonly predicted_per_second: number;
}

/** A finished completion in llama-server's native shape (`to_json_non_oaicompat`); every wire format starts from it. */
export interface NativeFinalResult {
  readonly index: number;
  /** '' when streamed: the text went out in the partial chunks. */
  readonly content: string;
  readonly tokens: readonly number[];
  readonly id_slot: number;
  readonly stop: true;
  readonly model: string;
  readonly tokens_predicted: number;
  readonly tokens_evaluated: number;
  readonly generation_settings: Readonly<Record<string, unknown>>;
  readonly prompt: string;
  readonly has_new_line: boolean;
  readonly truncated: boolean;
  readonly stop_type: StopType;
  readonly stopping_word: string;
  readonly tokens_cached: number;
  readonly timings: MockTimings;
}

/**
 * How one completion goes on the wire: llama-server's native /completion shape (below) or one of its
 * OpenAI-compatible ones (mock-openai.ts). The generation (slot, pacing, tokens) is the same for all.
 */
export interface CompletionWire {
  /** The SSE text for one streamed token; `generated` already counts it. Written with one res.write. */
  token(tokenId: number, generated: number): string;
  /** The SSE text that ends a stream. */
  streamEnd(final: NativeFinalResult): string;
  /** The JSON body of a completion that was not streamed. */
  body(final: NativeFinalResult): unknown;
}

/** llama-server's native /completion wire: bare `data:` chunks, the final one carrying stop_type and timings, no [DONE]. */
export function nativeWire(params: MockCompletionParams): CompletionWire {
  const returnTokens = params.returnTokens;
  const tail = `"stop":false,"id_slot":-1,"tokens_predicted":`;
  const evaluated = `,"tokens_evaluated":${params.promptTokens}}\n\n`;
  return {
    // Like llama-server (b1-de3ff81): partial chunks say id_slot -1; only the final chunk names the slot.
    token: (tokenId, generated) =>
      `data: {"index":0,"content":${pieceJson(tokenId)},"tokens":[${returnTokens ? tokenId : ''}],${tail}${generated}${evaluated}`,
    streamEnd: (final) => `data: ${JSON.stringify(final)}\n\n`,
    body: (final) => final,
  };
}

/**
 * One completion on one slot. Tokens are due at fixed offsets from the first one (ttft, then every
 * interTokenMs), so timer lateness does not accumulate over a long stream. Each SSE chunk is one
 * res.write of one preformatted string.
 */
export class MockGeneration {
  private readonly source: SeededTokenSource;
  private slot: MockSlot | undefined;
  private timer: NodeJS.Timeout | undefined;
  private done = false;
  private generated = 0;
  private grantedAt = 0;
  private firstTokenAt = 0;
  private lastTokenAt = 0;
  private readonly pieces: string[] = [];
  private readonly tokenIds: number[] = [];
  /** Prompt tokens reused from the slot's cache (`timings.cache_n`). */
  private cacheN = 0;

  constructor(
    private readonly params: MockCompletionParams,
    private readonly res: ServerResponse,
    private readonly counters: MockCounters,
    private readonly timing: GenerationTiming,
    private readonly onSlotFreed: (slot: MockSlot) => void,
    private readonly wire: CompletionWire = nativeWire(params),
  ) {
    this.source = new SeededTokenSource(params.seed, params.prompt);
  }

  /** Called when the pool grants a slot: the "prompt processing" (ttft) starts now. */
  readonly start = (slot: MockSlot): void => {
    if (this.done) {
      this.onSlotFreed(slot);
      return;
    }
    this.slot = slot;
    const prompt = this.params.prompt;
    // Like llama.cpp: a prompt that extends what the slot holds reuses it, but one token is always re-evaluated.
    if (this.params.cachePrompt && typeof prompt === 'string' && slot.nCached > 0 && prompt.startsWith(slot.cachedText)) {
      this.cacheN = Math.min(slot.nCached, this.params.promptTokens - 1);
    }
    slot.seed = this.params.seed;
    slot.nHeld = this.params.promptTokens;
    slot.nRemain = this.params.tokenLimit;
    slot.params = { seed: this.params.seed, n_predict: this.params.nPredict, ...this.params.samplerSettings };
    this.grantedAt = performance.now();
    this.timer = setTimeout(this.tick, this.timing.ttftMs);
  };

  /** The client went away: stop at once and free the slot (llama.cpp's only cancel mechanism). */
  cancel(): void {
    if (this.done) return;
    this.done = true;
    this.counters.completionsCancelled++;
    this.freeSlot();
  }

  private readonly tick = (): void => {
    this.timer = undefined;
    if (this.done) return;
    const now = performance.now();
    if (this.generated === 0) {
      this.firstTokenAt = now;
      this.counters.promptTokensTotal += this.params.promptTokens;
      this.counters.promptSecondsTotal += (now - this.grantedAt) / 1000;
    }
    const eosDue = this.timing.emitEos && !this.params.ignoreEos && this.generated === this.source.eosAfterTokens;
    if (eosDue || this.generated >= this.params.tokenLimit) {
      if (eosDue) this.countToken(now); // EOS is sampled like any token, though never shown
      this.finish(eosDue ? 'eos' : 'limit');
      return;
    }
    const tokenId = this.source.nextTokenId();
    this.countToken(now);
    let writable = true;
    if (this.params.stream) {
      writable = this.res.write(this.wire.token(tokenId, this.generated));
    } else {
      this.tokenIds.push(tokenId);
    }
    // Kept for the non-stream body and for the slot's cache (what a next turn's prompt extends).
    this.pieces.push(pieceText(tokenId));
    if (this.generated >= this.params.tokenLimit) {
      this.finish('limit'); // llama-server sends the final chunk right after the last token
    } else if (writable) {
      this.scheduleNext();
    } else {
      this.res.once('drain', this.scheduleNext); // honour backpressure like a real socket writer
    }
  };

  private readonly scheduleNext = (): void => {
    if (this.done) return;
    const dueAt = this.firstTokenAt + this.generated * this.timing.interTokenMs;
    this.timer = setTimeout(this.tick, Math.max(0, dueAt - performance.now()));
  };

  private countToken(now: number): void {
    this.generated++;
    this.lastTokenAt = now;
    this.counters.tokensPredictedTotal++;
    if (this.slot !== undefined) {
      this.slot.nDecoded = this.generated;
      this.slot.nHeld = this.params.promptTokens + this.generated;
      this.slot.nRemain = Math.max(0, this.params.tokenLimit - this.generated);
    }
  }

  private finish(stopType: StopType): void {
    this.done = true;
    // Decode time runs from the first token to the last; the first token's own step counts as prompt time.
    const predictedMs = this.generated > 0 ? this.lastTokenAt - this.firstTokenAt : 0;
    this.counters.tokensPredictedSecondsTotal += predictedMs / 1000;
    this.counters.completionsFinished++;
    const final = this.finalResult(stopType, predictedMs);
    if (this.slot !== undefined) {
      this.slot.cachedText = (typeof this.params.prompt === 'string' ? this.params.prompt : '') + this.pieces.join('');
      this.slot.nCached = this.params.promptTokens + this.generated;
      this.slot.nHeld = this.slot.nCached;
    }
    if (this.params.stream) {
      this.res.end(this.wire.streamEnd(final));
    } else {
      const body = JSON.stringify(this.wire.body(final));
      this.res.writeHead(200, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(body) });
      this.res.end(body);
    }
    this.freeSlot();
  }

  private finalResult(stopType: StopType, predictedMs: number): NativeFinalResult {
    const promptMs = this.firstTokenAt - this.grantedAt;
    const predictedN = this.generated;
    return {
      index: 0,
      content: this.params.stream ? '' : this.pieces.join(''),
      tokens: this.params.stream || !this.params.returnTokens ? [] : this.tokenIds,
      id_slot: this.slot?.id ?? -1,
      stop: true,
      model: this.timing.modelName,
      tokens_predicted: predictedN,
      tokens_evaluated: this.params.promptTokens,
      generation_settings: { seed: this.params.seed, n_predict: this.params.nPredict, ignore_eos: this.params.ignoreEos, ...this.params.samplerSettings },
      prompt: typeof this.params.prompt === 'string' ? this.params.prompt : '',
      has_new_line: false,
      truncated: false,
      stop_type: stopType,
      stopping_word: '',
      tokens_cached: this.params.promptTokens + predictedN,
      timings: {
        cache_n: this.cacheN,
        prompt_n: this.params.promptTokens,
        prompt_ms: promptMs,
        prompt_per_token_ms: promptMs / this.params.promptTokens,
        prompt_per_second: promptMs > 0 ? (this.params.promptTokens * 1000) / promptMs : 0,
        predicted_n: predictedN,
        predicted_ms: predictedMs,
        predicted_per_token_ms: predictedN > 0 ? predictedMs / predictedN : 0,
        predicted_per_second: predictedMs > 0 ? (predictedN * 1000) / predictedMs : 0,
      },
    };
  }

  private freeSlot(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    const slot = this.slot;
    this.slot = undefined;
    if (slot !== undefined) this.onSlotFreed(slot);
  }
}
