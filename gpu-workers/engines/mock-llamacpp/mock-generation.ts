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

type StopType = 'eos' | 'limit';

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
      writable = this.res.write(
        `data: {"index":0,"content":${pieceJson(tokenId)},"tokens":[${this.params.returnTokens ? tokenId : ''}],` +
          // Like llama-server (b1-de3ff81): partial chunks say id_slot -1; only the final chunk names the slot.
          `"stop":false,"id_slot":-1,"tokens_predicted":${this.generated},` +
          `"tokens_evaluated":${this.params.promptTokens}}\n\n`,
      );
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
    }
    if (this.params.stream) {
      this.res.end(`data: ${JSON.stringify(final)}\n\n`);
    } else {
      const body = JSON.stringify(final);
      this.res.writeHead(200, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(body) });
      this.res.end(body);
    }
    this.freeSlot();
  }

  private finalResult(stopType: StopType, predictedMs: number): Record<string, unknown> {
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
