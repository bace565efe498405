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
  readonly onDisabled?: (reason: string) => void;
}

const MAX_PARTS_PER_CHUNK = 1024;
const SEND_ATTEMPTS = 4;
const RETRY_DELAY_MS = 100;

/**
 * Relays one attempt's parts to the gateway with at most one request in flight: at a low token rate
 * each token goes out at once, at a high rate the parts that queue up behind a request go in the next
 * one. If the gateway cannot be reached the pusher stops trying; the tokens are still in the
 * workflow's result, so nothing is lost.
 */
export class StreamPusher {
  private readonly options: StreamPusherOptions;
  private readonly pending: WorkerPart[] = [];
  private readonly url: string;
  private seq = 0;
  private sending: Promise<void> | undefined;
  private state: 'open' | 'cancelled' | 'disabled' = 'open';
  private terminalDelivered = false;

  constructor(options: StreamPusherOptions) {
    this.options = options;
    this.url = `${options.sinkUrl}/internal/v1/tasks/${encodeURIComponent(options.taskId)}/chunks`;
  }

  get cancelled(): boolean {
    return this.state === 'cancelled';
  }

  /** True once the gateway accepted a chunk carrying `end` or `error`: it holds the terminal frame. */
  get terminalAccepted(): boolean {
    return this.terminalDelivered;
  }

  push(part: WorkerPart): void {
    if (this.state !== 'open') return;
    this.pending.push(part);
    this.sending ??= this.drain().finally(() => {
      this.sending = undefined;
    });
  }

  /** Resolves when every pushed part has been answered (or the pusher gave up). */
  async flush(): Promise<void> {
    while (this.sending) await this.sending;
  }

  private async drain(): Promise<void> {
    while (this.state === 'open' && this.pending.length > 0) {
      const parts = this.pending.splice(0, MAX_PARTS_PER_CHUNK);
      const chunk: WorkerChunk = { attempt: this.options.attempt, seq: this.seq, parts };
      const verdict = await this.send(chunk);
      this.seq += 1;
      if (verdict === 'cancelled') {
        this.state = 'cancelled';
        this.pending.length = 0;
        this.options.onCancelled();
      } else if (verdict === 'unknown') {
        this.disable('the gateway holds no stream for this task');
      } else if (parts.some((part) => part.type === 'end' || part.type === 'error')) {
        this.terminalDelivered = true;
      }
    }
  }

  private async send(chunk: WorkerChunk): Promise<ChunkVerdict> {
    const body = JSON.stringify(chunk);
    let lastError = '';
    for (let attempt = 1; attempt <= SEND_ATTEMPTS; attempt += 1) {
      try {
        const response = await request(this.url, {
          method: 'POST',
          dispatcher: this.options.dispatcher,
          headers: { 'content-type': 'application/json', ...internalAuthHeaders(this.options.internalToken) },
          body,
        });
        const text = await response.body.text();
        if (response.statusCode === 200) return parseVerdict(text);
        if (response.statusCode === 404) return 'unknown';
        lastError = `HTTP ${response.statusCode}`;
        if (response.statusCode < 500) break;
      } catch (error) {
        lastError = (error as Error).message;
      }
      await new Promise((resolve) => setTimeout(resolve, RETRY_DELAY_MS * attempt));
    }
    this.disable(`gateway unreachable: ${lastError}`);
    return 'unknown';
  }

  private disable(reason: string): void {
    if (this.state !== 'open') return;
    this.state = 'disabled';
    this.pending.length = 0;
    this.options.onDisabled?.(reason);
  }
}

function parseVerdict(text: string): ChunkVerdict {
  const parsed = JSON.parse(text) as { verdict?: unknown };
  return parsed.verdict === 'cancelled' ? 'cancelled' : parsed.verdict === 'unknown' ? 'unknown' : 'accepted';
}
