import type { ServerResponse } from 'node:http';
import { encodeSseFrame, type SseFrame } from './sse-frames';

const KEEPALIVE_INTERVAL_MS = 15_000;

/** An open SSE response: headers committed once, frames written whole, a comment line as keepalive. */
export class SseResponse {
  private readonly response: ServerResponse;
  private readonly keepalive: NodeJS.Timeout;
  private closed = false;

  constructor(response: ServerResponse, correlationId: string, extraHeaders: Readonly<Record<string, string>> = {}) {
    this.response = response;
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

  private writeRaw(text: string): void {
    if (!this.closed) this.response.write(text);
  }

  private markClosed(): void {
    this.closed = true;
    clearInterval(this.keepalive);
  }
}
