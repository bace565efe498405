import type { ServerResponse } from 'node:http';
import { sseGuardOf, type SseBufferGuard } from './sse-backpressure';
import { encodeSseFrame, type SseFrame } from './sse-frames';

const KEEPALIVE_INTERVAL_MS = 15_000;

/**
 * An open SSE response: headers committed once, frames written whole, a comment line as keepalive. A client
 * that leaves more than its gateway's `streams.max_buffered_bytes` unread is disconnected (sse-backpressure.ts).
 */
export class SseResponse {
  private readonly response: ServerResponse;
  private readonly correlationId: string;
  private readonly guard: SseBufferGuard;
  private readonly keepalive: NodeJS.Timeout;
  private closed = false;
  private inBurst = false;

  constructor(response: ServerResponse, correlationId: string, extraHeaders: Readonly<Record<string, string>> = {}) {
    this.response = response;
    this.correlationId = correlationId;
    this.guard = sseGuardOf(response);
    response.writeHead(200, {
      ...extraHeaders,
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
      'x-correlation-id': correlationId,
    });
    response.flushHeaders();
    this.keepalive = setInterval(() => this.writeRaw(': keepalive\n\n'), KEEPALIVE_INTERVAL_MS);
    this.keepalive.unref();
    response.once('close', () => this.markClosed());
  }

  get isClosed(): boolean {
    return this.closed;
  }

  onClose(listener: () => void): void {
    this.response.once('close', listener);
  }

  write(frame: SseFrame): void {
    this.writeRaw(encodeSseFrame(frame));
  }

  /** Frames already encoded, whole (a stream relayed from the gateway that holds it). */
  writeEncoded(frames: string): void {
    this.writeRaw(frames);
  }

  end(): void {
    if (this.closed) return;
    this.markClosed();
    this.response.end();
  }

  /**
   * Frames arrive in bursts (a worker's chunk of up to 1024 parts, a Last-Event-ID replay), each written whole.
   * Before a burst, the bytes Node still holds from earlier ones — the client had the event loop's turns to read
   * them — are measured: past the bound the client is not reading, and the connection is closed. So one
   * connection holds at most the bound plus one burst.
   */
  private writeRaw(text: string): void {
    if (this.closed) return;
    if (!this.inBurst) {
      const carried = this.response.writableLength;
      if (carried > this.guard.maxBufferedBytes) {
        this.closeSlowClient(carried);
        return;
      }
      this.inBurst = true;
      setImmediate(this.endBurst);
    }
    this.response.write(text);
    this.guard.observe(this.response.writableLength);
  }

  private readonly endBurst = (): void => {
    this.inBurst = false;
  };

  /** Stops writing and closes the socket: its buffer is freed, 'close' unsubscribes the stream. */
  private closeSlowClient(buffered: number): void {
    this.markClosed();
    this.guard.slowClientClosed(buffered, this.correlationId);
    this.response.destroy();
  }

  private markClosed(): void {
    this.closed = true;
    clearInterval(this.keepalive);
  }
}
