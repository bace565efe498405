import { performance } from 'node:perf_hooks';
import { MOCK_EOS_TOKEN_ID, SeededTokenSource, pieceText } from '../mock-llamacpp/mock-vocabulary';
import type { TgiDoubleMetrics } from './tgi-double-metrics';
import type { ValidGenerateRequest } from './tgi-double-request';

/** `Token` of router/src/lib.rs. */
export interface TgiToken {
  readonly id: number;
  readonly text: string;
  readonly logprob: number;
  readonly special: boolean;
}

export type TgiFinishReason = 'length' | 'eos_token' | 'stop_sequence';

/** What the last token carries: the text without special tokens, and the fields of `StreamDetails` / `Details`. */
export interface GenerationEnd {
  readonly generatedText: string;
  readonly finishReason: TgiFinishReason;
  readonly generatedTokens: number;
  /** The seed, only when sampling (the model server reports `seed if do_sample else None`). */
  readonly seed: number | null;
  readonly tokens: readonly TgiToken[];
  readonly queuedMs: number;
  readonly inferenceMs: number;
}

export interface GenerationSink {
  /** One token; `end` on the last. Returns false when the client's socket is full: wait for `onDrain`. */
  token(token: TgiToken, index: number, end: GenerationEnd | undefined): boolean;
  onDrain(resume: () => void): void;
}

export interface SchedulerTiming {
  readonly ttftMs: number;
  readonly interTokenMs: number;
  /** Without it no generation ends with EOS: each runs to its token limit or a stop sequence. */
  readonly emitEos: boolean;
  readonly maxTotalTokens: number;
}

/** The EOS token as a TGI stream shows it: text decoded with special tokens kept, `special: true`. */
const EOS_TEXT = '</s>';

/**
 * TGI's router between a request and its tokens: the `max_concurrent_requests` semaphore (infer/mod.rs: a permit is
 * tried, never waited for; without one the request is refused "overloaded"), then the queue and the running batch
 * (backends/v3: `tgi_queue_size`, `tgi_batch_current_size`). The batch holds at most `maxBatchSize` (the launcher's
 * `--max-batch-size`); TGI bounds it by tokens too, which the double does not model. A request whose client left is
 * dropped from the queue or the batch at once and its permit freed (backend.rs counts it `err="dropped"`).
 */
export class TgiDoubleScheduler {
  private permitsHeld = 0;
  private readonly queue: Generation[] = [];
  private readonly running = new Set<Generation>();
  private everQueued = false;

  constructor(
    private readonly maxConcurrentRequests: number,
    private readonly maxBatchSize: number,
    private readonly timing: SchedulerTiming,
    private readonly metrics: TgiDoubleMetrics,
  ) {}

  get queueSize(): number {
    return this.queue.length;
  }

  get batchSize(): number {
    return this.running.size;
  }

  get permitsInUse(): number {
    return this.permitsHeld;
  }

  /** `try_acquire_owned` on the semaphore: true when a permit was taken. */
  tryAcquire(): boolean {
    if (this.permitsHeld >= this.maxConcurrentRequests) return false;
    this.permitsHeld++;
    return true;
  }

  release(): void {
    this.permitsHeld = Math.max(0, this.permitsHeld - 1);
  }

  /** Queues a validated request that holds a permit; the handle cancels it (the client left). */
  schedule(request: ValidGenerateRequest, sink: GenerationSink): { cancel(): void } {
    const generation = new Generation(request, sink, this.timing, this.metrics, (finished) => this.finished(finished));
    this.queue.push(generation);
    this.everQueued = true;
    this.publish();
    this.fill();
    return {
      cancel: () => {
        if (generation.isDone) return;
        generation.stop();
        this.metrics.fail('dropped');
        const at = this.queue.indexOf(generation);
        if (at >= 0) this.queue.splice(at, 1);
        this.finished(generation);
      },
    };
  }

  /** Called once per generation, ended or cancelled: its permit and batch place go back. */
  private finished(generation: Generation): void {
    this.running.delete(generation);
    this.release();
    this.fill();
    this.publish();
  }

  private fill(): void {
    let admitted = 0;
    while (this.running.size < this.maxBatchSize && this.queue.length > 0) {
      const next = this.queue.shift();
      if (next === undefined) break;
      this.running.add(next);
      next.start();
      admitted++;
    }
    if (admitted > 0) this.metrics.record('tgi_batch_next_size', admitted);
    this.publish();
  }

  private publish(): void {
    if (!this.everQueued) return;
    this.metrics.set('tgi_queue_size', this.queue.length);
    this.metrics.set('tgi_batch_current_size', this.running.size);
    let maxTokens = 0;
    for (const generation of this.running) maxTokens += generation.maxTokens;
    this.metrics.set('tgi_batch_current_max_tokens', maxTokens);
  }
}

/**
 * One request in the batch. Output is a pure function of (seed when sampling, else 0; inputs): greedy decoding does
 * not depend on the seed. Tokens are due at fixed offsets from the first (ttft, then every interTokenMs).
 */
class Generation {
  private readonly source: SeededTokenSource;
  private readonly queuedAt = performance.now();
  private startedAt = 0;
  private firstTokenAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private done = false;
  private generated = 0;
  private text = '';
  private readonly tokens: TgiToken[] = [];

  constructor(
    private readonly request: ValidGenerateRequest,
    private readonly sink: GenerationSink,
    private readonly timing: SchedulerTiming,
    private readonly metrics: TgiDoubleMetrics,
    private readonly onFinished: (generation: Generation) => void,
  ) {
    this.source = new SeededTokenSource(request.sampling ? request.seed : 0, request.inputs);
  }

  get isDone(): boolean {
    return this.done;
  }

  /** Tokens the batch reserves for it (`tgi_batch_current_max_tokens`). */
  get maxTokens(): number {
    return this.request.inputLength + this.request.chunkTokens;
  }

  start(): void {
    if (this.done) return;
    this.startedAt = performance.now();
    this.metrics.record('tgi_request_queue_duration', (this.startedAt - this.queuedAt) / 1000);
    this.timer = setTimeout(this.tick, this.timing.ttftMs);
  }

  stop(): void {
    this.done = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private readonly tick = (): void => {
    this.timer = undefined;
    if (this.done) return;
    const now = performance.now();
    if (this.generated === 0) this.firstTokenAt = now;
    const eos = this.timing.emitEos && this.generated === this.source.eosAfterTokens;
    const id = eos ? MOCK_EOS_TOKEN_ID : this.source.nextTokenId();
    const token: TgiToken = {
      id,
      text: eos ? EOS_TEXT : pieceText(id),
      // A plausible log-probability, deterministic like the tokens.
      logprob: -(((id * 7 + this.generated) % 50) + 1) / 20,
      special: eos,
    };
    this.generated++;
    this.tokens.push(token);
    if (!token.special) this.text += token.text;
    const finishReason = eos ? 'eos_token' : this.stopSequenceHit() ? 'stop_sequence' : this.lengthReached() ? 'length' : undefined;
    const end = finishReason === undefined ? undefined : this.end(finishReason, now);
    if (end !== undefined) {
      this.stop();
      this.sink.token(token, this.generated, end);
      this.onFinished(this);
      return;
    }
    if (this.sink.token(token, this.generated, undefined)) this.scheduleNext();
    else this.sink.onDrain(this.scheduleNext);
  };

  private readonly scheduleNext = (): void => {
    if (this.done) return;
    const dueAt = this.firstTokenAt + this.generated * this.timing.interTokenMs;
    this.timer = setTimeout(this.tick, Math.max(0, dueAt - performance.now()));
  };

  private stopSequenceHit(): boolean {
    return this.request.stop.some((stop) => stop.length > 0 && this.text.endsWith(stop));
  }

  /**
   * The request's budget, generated in chunks: after each chunk TGI re-validates inputs + what it generated and
   * stops ("length") when another chunk would not fit in max_total_tokens (infer/mod.rs).
   */
  private lengthReached(): boolean {
    if (this.generated >= this.request.maxNewTokens) return true;
    if (this.generated % this.request.chunkTokens !== 0) return false;
    return this.request.inputLength + this.generated + this.request.chunkTokens > this.timing.maxTotalTokens;
  }

  private end(finishReason: TgiFinishReason, now: number): GenerationEnd {
    const inferenceMs = now - this.startedAt;
    const queuedMs = this.startedAt - this.queuedAt;
    this.metrics.increment('tgi_request_success');
    this.metrics.record('tgi_request_inference_duration', inferenceMs / 1000);
    this.metrics.record('tgi_request_mean_time_per_token_duration', inferenceMs / 1000 / this.generated);
    this.metrics.record('tgi_request_generated_tokens', this.generated);
    return {
      generatedText: this.request.returnFullText ? this.request.inputs + this.text : this.text,
      finishReason,
      generatedTokens: this.generated,
      seed: this.request.sampling ? this.request.seed : null,
      tokens: this.tokens,
      queuedMs,
      inferenceMs,
    };
  }
}
