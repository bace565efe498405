import type { ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { STREAM_DEFAULTS } from '../core/config';
import type { OrchMetrics } from './observability/metrics';

/**
 * What one SSE connection may leave unread in the gateway (issue 13: slow clients). Node keeps every write a
 * socket cannot take yet, without limit: a client that never reads would grow the gateway's heap by its whole
 * stream. SseResponse measures the response's `writableLength` before each burst of frames and closes the
 * connection past the bound; the task goes on, and the client resumes with Last-Event-ID from the replay buffer.
 */
export interface SseBufferGuard {
  readonly maxBufferedBytes: number;
  /** The bytes waiting after a write (the high-water mark the metrics show: at most the bound plus one burst). */
  observe(bufferedBytes: number): void;
  /** Once per connection closed for falling behind. */
  slowClientClosed(bufferedBytes: number, correlationId: string): void;
}

/** The gateway's guard: one per gateway, shared by its SSE responses; counts closes and the high-water mark. */
export class SseBufferBudget implements SseBufferGuard {
  private peakBytes = 0;

  constructor(
    readonly maxBufferedBytes: number,
    private readonly metrics: OrchMetrics,
    private readonly logger: Logger,
  ) {
    metrics.addCollector(() => metrics.set('sseBufferedBytesMax', {}, this.peakBytes));
  }

  observe(bufferedBytes: number): void {
    if (bufferedBytes > this.peakBytes) this.peakBytes = bufferedBytes;
  }

  slowClientClosed(bufferedBytes: number, correlationId: string): void {
    this.metrics.inc('sseSlowClientCloses', {});
    this.logger.warn(
      { correlation_id: correlationId, buffered_bytes: bufferedBytes, max_buffered_bytes: this.maxBufferedBytes },
      'SSE client stopped reading; connection closed (the task goes on; Last-Event-ID resumes it)',
    );
  }
}

/** For responses no gateway bound (unit tests): the default bound, nothing counted. */
const UNCOUNTED: SseBufferGuard = {
  maxBufferedBytes: STREAM_DEFAULTS.maxBufferedBytes,
  observe: () => undefined,
  slowClientClosed: () => undefined,
};

// Keyed by the response, so every SseResponse a route opens (native, OpenAI, relayed) finds its gateway's bound.
const guards = new WeakMap<ServerResponse, SseBufferGuard>();

export function bindSseGuard(response: ServerResponse, guard: SseBufferGuard): void {
  guards.set(response, guard);
}

export function sseGuardOf(response: ServerResponse): SseBufferGuard {
  return guards.get(response) ?? UNCOUNTED;
}
