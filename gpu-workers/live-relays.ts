import type { StreamPusher } from '../activities/stream-pusher';

/**
 * The token relays of the tasks decoding in this pool worker, by task id, so a gateway that takes over
 * a stream whose gateway died can have it sent to itself (api/stream-handover.ts). Lives as long as the
 * process: a run started in one Ready period may still decode in the next.
 */
export class LiveRelays {
  private readonly relays = new Map<string, StreamPusher>();

  /** Keeps the relay while its attempt runs; the returned function forgets it (a later attempt's stays). */
  register(taskId: string, relay: StreamPusher): () => void {
    this.relays.set(taskId, relay);
    return () => {
      if (this.relays.get(taskId) === relay) this.relays.delete(taskId);
    };
  }

  /** Hands the task's stream to `sinkUrl`; false when this worker runs no such task or the hand-over failed. */
  async handOver(taskId: string, sinkUrl: string): Promise<boolean> {
    const relay = this.relays.get(taskId);
    return relay === undefined ? false : relay.handOverTo(sinkUrl);
  }
}
