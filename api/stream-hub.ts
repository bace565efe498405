import type { ChunkVerdict, StreamPart, WorkerChunk } from '../core/stream-parts';
import { TaskStream, type StreamAdmission } from './task-stream';

export interface StreamHubOptions {
  readonly replayCapacity: number;
  /** How long a finished stream stays for late readers. */
  readonly lingerMs: number;
}

/** The live streams this gateway holds, by task id. */
export class StreamHub {
  private readonly streams = new Map<string, TaskStream>();
  private readonly evictionTimers = new Map<string, NodeJS.Timeout>();
  private readonly options: StreamHubOptions;
  /** One function for every stream's end, not a closure per queued task. */
  private readonly onStreamClosed = (taskId: string): void => this.scheduleEviction(taskId);

  constructor(options: StreamHubOptions) {
    this.options = options;
  }

  get size(): number {
    return this.streams.size;
  }

  get(taskId: string): TaskStream | undefined {
    return this.streams.get(taskId);
  }

  open(taskId: string, engine: string, started: Extract<StreamPart, { type: 'started' }>, admission: StreamAdmission): TaskStream {
    const existing = this.streams.get(taskId);
    if (existing) return existing;
    const stream = new TaskStream(taskId, engine, this.options.replayCapacity, started, admission, this.onStreamClosed);
    this.streams.set(taskId, stream);
    return stream;
  }

  /** Forgets a stream at once (its workflow never started). */
  discard(taskId: string): void {
    this.streams.delete(taskId);
    const timer = this.evictionTimers.get(taskId);
    if (timer) clearTimeout(timer);
    this.evictionTimers.delete(taskId);
  }

  acceptChunk(taskId: string, chunk: WorkerChunk): ChunkVerdict {
    return this.streams.get(taskId)?.acceptChunk(chunk) ?? 'unknown';
  }

  close(): void {
    for (const timer of this.evictionTimers.values()) clearTimeout(timer);
    this.evictionTimers.clear();
    this.streams.clear();
  }

  private scheduleEviction(taskId: string): void {
    if (this.evictionTimers.has(taskId)) return;
    const timer = setTimeout(() => {
      this.streams.delete(taskId);
      this.evictionTimers.delete(taskId);
    }, this.options.lingerMs);
    timer.unref();
    this.evictionTimers.set(taskId, timer);
  }
}
