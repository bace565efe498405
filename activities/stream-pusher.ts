import { request, type Dispatcher } from 'undici';
import type { ChunkVerdict, WorkerChunk, WorkerPart } from '../core/stream-parts';
import { internalAuthHeaders } from './internal-auth';

export interface StreamPusherOptions {
  readonly sinkUrl: string;
  readonly taskId: string;
  readonly attempt: number;
  readonly internalToken: string;
  readonly dispatcher: Dispatcher;
  /** Called once when the gateway answers that the task was cancelled. */
  readonly onCancelled: () => void;
  /** Called when the gateway holding the stream cannot be reached or no longer holds it. */
  readonly onOrphaned?: (reason: string) => void;
}

const MAX_PARTS_PER_CHUNK = 1024;
const SEND_ATTEMPTS = 4;
const RETRY_DELAY_MS = 100;

/**
 * Relays one attempt's parts to the gateway with at most one request in flight: at a low token rate
 * each token goes out at once, at a high rate the parts that queue up behind a request go in the next
 * one.
 *
 * If that gateway dies (or restarts without the stream) the pusher is orphaned: it stops sending but
 * keeps every part of the attempt, so another gateway a client reconnected to can take the stream over
 * (`handOverTo`, api/stream-handover.ts) and gets it whole, ids and all. Nothing is lost either way:
 * the tokens are also in the workflow's result.
 */
export class StreamPusher {
  private readonly options: StreamPusherOptions;
  private readonly pending: WorkerPart[] = [];
  /** Every part of this attempt, for a gateway that takes the stream over. */
  private readonly history: WorkerPart[] = [];
  private url: string;
  /** Bumped by a hand-over: answers to requests sent to the previous gateway no longer count. */
  private sinkGeneration = 0;
  private seq = 0;
  private sending: Promise<void> | undefined;
  private state: 'open' | 'cancelled' | 'orphaned' = 'open';
  private terminalDelivered = false;

  constructor(options: StreamPusherOptions) {
    this.options = options;
    this.url = chunksUrl(options.sinkUrl, options.taskId);
  }

  get attempt(): number {
    return this.options.attempt;
  }

  get cancelled(): boolean {
    return this.state === 'cancelled';
  }

  /** True once the gateway accepted a chunk carrying `end` or `error`: it holds the terminal frame. */
  get terminalAccepted(): boolean {
    return this.terminalDelivered;
  }

  push(part: WorkerPart): void {
    if (this.state === 'cancelled') return;
    this.history.push(part);
    if (this.state === 'orphaned') return;
    this.pending.push(part);
    this.startDraining();
  }

  /**
   * Sends the stream to another gateway from its first part, and every part after it. Resolves true
   * once that gateway accepted the parts so far; false if the task was cancelled meanwhile or the new
   * gateway refused them (the pusher is then orphaned again).
   */
  async handOverTo(sinkUrl: string): Promise<boolean> {
    if (this.state === 'cancelled') return false;
    const url = chunksUrl(sinkUrl, this.options.taskId);
    // Already sending there: a replay would repeat its metrics frames.
    if (this.state === 'open' && url === this.url) return true;
    this.sinkGeneration += 1;
    this.url = url;
    this.state = 'open';
    this.terminalDelivered = false;
    this.pending.length = 0;
    this.pending.push(...this.history);
    this.startDraining();
    await this.flush();
    return this.state === 'open';
  }

  /** Resolves when every pushed part has been answered (or the pusher was orphaned). */
  async flush(): Promise<void> {
    while (this.sending) await this.sending;
  }

  private startDraining(): void {
    this.sending ??= this.drain().finally(() => {
      this.sending = undefined;
    });
  }

  private async drain(): Promise<void> {
    while (this.state === 'open' && this.pending.length > 0) {
      const generation = this.sinkGeneration;
      const parts = this.pending.splice(0, MAX_PARTS_PER_CHUNK);
      const chunk: WorkerChunk = { attempt: this.options.attempt, seq: this.seq, parts };
      this.seq += 1;
      const verdict = await this.send(this.url, chunk);
      // Handed over while this was in flight: the new gateway gets these parts in its replay.
      if (generation !== this.sinkGeneration) continue;
      if (verdict === 'cancelled') {
        this.state = 'cancelled';
        this.pending.length = 0;
        this.options.onCancelled();
      } else if (verdict === 'accepted') {
        if (parts.some((part) => part.type === 'end' || part.type === 'error')) this.terminalDelivered = true;
      } else {
        this.orphan(verdict.why);
      }
    }
  }

  private async send(url: string, chunk: WorkerChunk): Promise<Exclude<ChunkVerdict, 'unknown'> | { why: string }> {
    const body = JSON.stringify(chunk);
    let lastError = '';
    for (let attempt = 1; attempt <= SEND_ATTEMPTS; attempt += 1) {
      try {
        const response = await request(url, {
          method: 'POST',
          dispatcher: this.options.dispatcher,
          headers: { 'content-type': 'application/json', ...internalAuthHeaders(this.options.internalToken) },
          body,
        });
        const text = await response.body.text();
        if (response.statusCode === 200) {
          const verdict = parseVerdict(text);
          return verdict === 'unknown' ? { why: 'the gateway holds no stream for this task' } : verdict;
        }
        if (response.statusCode === 404) return { why: 'the gateway holds no stream for this task' };
        lastError = `HTTP ${response.statusCode}`;
        if (response.statusCode < 500) break;
      } catch (error) {
        lastError = (error as Error).message;
      }
      await new Promise((resolve) => setTimeout(resolve, RETRY_DELAY_MS * attempt));
    }
    return { why: `gateway unreachable: ${lastError}` };
  }

  private orphan(reason: string): void {
    if (this.state !== 'open') return;
    this.state = 'orphaned';
    this.pending.length = 0;
    this.options.onOrphaned?.(reason);
  }
}

function chunksUrl(sinkUrl: string, taskId: string): string {
  return `${sinkUrl}/internal/v1/tasks/${encodeURIComponent(taskId)}/chunks`;
}

function parseVerdict(text: string): ChunkVerdict {
  const parsed = JSON.parse(text) as { verdict?: unknown };
  return parsed.verdict === 'cancelled' ? 'cancelled' : parsed.verdict === 'unknown' ? 'unknown' : 'accepted';
}
