import type { ChunkVerdict, StreamPart, WorkerChunk } from '../core/stream-parts';
import { FramePositions, toSseFrame, type SseFrame } from './sse-frames';

export type StreamListener = (frame: SseFrame) => void;
export type StreamState = 'live' | 'ended' | 'cancelled';

/** What the gateway recorded when it admitted the task. */
export interface StreamAdmission {
  readonly requestDigest: string;
  readonly poolId: string;
  readonly admission: { readonly queuePosition: number; readonly predictedStartMs: number };
  /** The tenant that submitted the task; only it may stream or cancel it (ORCH-3035). */
  readonly tenant?: string | undefined;
}

/**
 * One task's stream in the gateway, the only emitter of its frames (design §2).
 *
 * Invariants: frame ids are stream positions (sse-frames.ts FramePositions); `tokenTexts[i]` is the text of token i as emitted; once the state
 * leaves `live` no frame is appended, so nothing is emitted after a cancel is acknowledged. A worker
 * retrying the task (a higher attempt) regenerates from token 0: tokens already emitted are checked
 * against what it sends and dropped, and a difference ends the stream with an error instead of wrong
 * tokens (design §6).
 */
export class TaskStream {
  readonly taskId: string;
  readonly engine: string;
  readonly requestDigest: string;
  readonly poolId: string;
  readonly admission: StreamAdmission['admission'];
  readonly tenant: string | undefined;
  // A gateway holds thousands of queued streams that nobody reads yet (issue 4: ≤ 4 KB per queued task), so
  // what only a reader or a token needs is made when the first one comes.
  private readonly frames: SseFrame[];
  private readonly replayCapacity: number;
  private tokenTexts: string[] | undefined;
  private listeners: Set<StreamListener> | undefined;
  private endListeners: Set<() => void> | undefined;
  private readonly positions = new FramePositions();
  private attempt = 0;
  private lastSeq = -1;
  private streamState: StreamState = 'live';
  private firstTokenAt: number | undefined;
  private endPart: Extract<StreamPart, { type: 'end' }> | undefined;

  /** Shared by all streams of a hub (no closure per task); called with this stream's task id. */
  private readonly onClosed: (taskId: string) => void;

  constructor(
    taskId: string,
    engine: string,
    replayCapacity: number,
    started: Extract<StreamPart, { type: 'started' }>,
    admission: StreamAdmission,
    onClosed: (taskId: string) => void = () => undefined,
  ) {
    this.onClosed = onClosed;
    this.requestDigest = admission.requestDigest;
    this.poolId = admission.poolId;
    this.admission = admission.admission;
    this.tenant = admission.tenant;
    this.taskId = taskId;
    this.engine = engine;
    this.replayCapacity = replayCapacity;
    this.frames = [toSseFrame(this.positions.idOf(started), started)];
  }

  get state(): StreamState {
    return this.streamState;
  }

  /** The engine's prompt token count and stop reason from the worker's `end`, once the task ended that way. */
  get ending(): { readonly tokensIn?: number | undefined; readonly stopReason?: string | undefined } | undefined {
    return this.endPart;
  }

  /** True once a worker's chunk arrived (attempts count from 1). */
  get fedByWorker(): boolean {
    return this.attempt > 0;
  }

  get tokensEmitted(): number {
    return this.tokenTexts?.length ?? 0;
  }

  acceptChunk(chunk: WorkerChunk): ChunkVerdict {
    if (this.streamState !== 'live' || chunk.attempt < this.attempt) return 'cancelled';
    if (chunk.attempt > this.attempt) {
      this.attempt = chunk.attempt;
      this.lastSeq = -1;
    }
    if (chunk.seq <= this.lastSeq) return 'accepted';
    this.lastSeq = chunk.seq;
    for (const part of chunk.parts) {
      if (this.streamState !== 'live') break;
      switch (part.type) {
        case 'token':
          this.acceptToken(part.text, part.index);
          break;
        case 'metrics':
          this.append({ type: 'metrics', values: part.values });
          break;
        case 'end':
          this.finish({ type: 'end', tokensOut: part.tokensOut, decodeMs: part.decodeMs, tokensIn: part.tokensIn, stopReason: part.stopReason }, 'ended');
          break;
        case 'error':
          this.finish({ type: 'error', code: part.code, message: part.message, engine: part.engine ?? this.engine }, 'ended');
          break;
      }
    }
    return this.streamState === 'live' || this.streamState === 'ended' ? 'accepted' : 'cancelled';
  }

  /** Ends the stream from outside (the workflow's terminal report); ignored once it has ended. */
  finish(part: Extract<StreamPart, { type: 'end' | 'error' }>, state: 'ended' = 'ended'): void {
    if (this.streamState !== 'live') return;
    if (part.type === 'end') this.endPart = part;
    this.append(part);
    this.streamState = state;
    this.notifyEnd();
  }

  /**
   * Completes the stream from the task's durable result (a stream taken over from a gateway that died,
   * api/stream-handover.ts): tokens not emitted yet are appended, ones already emitted are checked
   * against the result, then the terminal part. No parts (the task is unknown) end it with an error.
   */
  completeFrom(parts: readonly StreamPart[]): void {
    for (const part of parts) {
      if (this.streamState !== 'live') return;
      if (part.type === 'token') this.acceptToken(part.text, part.index);
      else if (part.type === 'end' && part.canceled === true) this.cancel();
      else if (part.type === 'end' || part.type === 'error') this.finish(part);
    }
    this.finish({ type: 'error', code: 'INTERNAL', message: 'the task ended without a result', engine: this.engine });
  }

  /**
   * Acknowledges a cancel: the stream closes with `end {canceled: true}`, nothing is emitted after it,
   * and the worker's next chunk is answered `cancelled` so it aborts the engine request.
   */
  cancel(): void {
    if (this.streamState !== 'live') return;
    const decodeMs = this.firstTokenAt === undefined ? 0 : Math.round(performance.now() - this.firstTokenAt);
    this.append({ type: 'end', tokensOut: this.tokensEmitted, decodeMs, canceled: true });
    this.streamState = 'cancelled';
    this.notifyEnd();
  }

  /**
   * Replays frames after `afterId` (all of them when undefined), then follows live frames. Returns
   * false when the frames asked for are no longer buffered.
   */
  subscribe(afterId: number | undefined, listener: StreamListener, onEnd: () => void): { unsubscribe: () => void; complete: boolean } {
    const firstBuffered = this.frames[0]?.id ?? 0;
    const from = afterId === undefined ? 0 : afterId + 1;
    const complete = from >= firstBuffered;
    for (const frame of this.frames) if (frame.id >= from) listener(frame);
    if (this.streamState !== 'live') {
      onEnd();
      return { unsubscribe: () => undefined, complete };
    }
    const listeners = (this.listeners ??= new Set());
    const endListeners = (this.endListeners ??= new Set());
    // Frames before the resume point can still arrive: a stream taken over from a dead gateway is replayed
    // from its first part after the client already subscribed (api/stream-handover.ts).
    const following: StreamListener = from === 0 ? listener : (frame) => {
      if (frame.id >= from) listener(frame);
    };
    listeners.add(following);
    endListeners.add(onEnd);
    return {
      unsubscribe: () => {
        listeners.delete(following);
        endListeners.delete(onEnd);
      },
      complete,
    };
  }

  private acceptToken(text: string, index: number): void {
    const tokenTexts = (this.tokenTexts ??= []);
    const emitted = tokenTexts[index];
    if (emitted !== undefined) {
      if (emitted !== text) {
        this.finish({ type: 'error', code: 'WORKER_RESET', message: `retry diverged from the emitted stream at token ${index}`, engine: this.engine });
      }
      return;
    }
    if (index !== tokenTexts.length) {
      this.finish({ type: 'error', code: 'INTERNAL', message: `token ${index} arrived before token ${tokenTexts.length}`, engine: this.engine });
      return;
    }
    tokenTexts.push(text);
    this.firstTokenAt ??= performance.now();
    this.append({ type: 'token', text, index });
  }

  private append(part: StreamPart): void {
    const frame = toSseFrame(this.positions.idOf(part), part);
    this.frames.push(frame);
    if (this.frames.length > this.replayCapacity) this.frames.shift();
    if (this.listeners) for (const listener of this.listeners) listener(frame);
  }

  private notifyEnd(): void {
    this.onClosed(this.taskId);
    if (this.endListeners) for (const onEnd of this.endListeners) onEnd();
    this.listeners?.clear();
    this.endListeners?.clear();
  }
}
