import { OrchClient } from '../clients/typescript/src';

export interface StreamRecord {
  /** 'end' or 'error' once a terminal frame arrived; 'lost' if none did before the deadline. */
  readonly outcome: 'end' | 'error' | 'lost';
  readonly errorCode: string | undefined;
  /** Token texts in arrival order. */
  readonly tokens: readonly string[];
  /** Tokens whose index had already arrived (delivered twice). */
  readonly duplicates: number;
  /** Tokens whose index was not the next one expected. */
  readonly outOfOrder: number;
  /** Connections after the first, each sent with Last-Event-ID. */
  readonly reconnects: number;
  /** When the terminal frame arrived (performance.now()), or NaN. */
  readonly endedAt: number;
  /**
   * After the last reconnect, tokens kept arriving as they were decoded (at least one gap of
   * LIVE_GAP_MS between two of them), not all at once from the task's result when it ended.
   */
  readonly liveAfterResume: boolean;
}

/** A stream rebuilt from a result is written in one go; decoded tokens come at the engine's pace (≥ 20 ms in the chaos run). */
const LIVE_GAP_MS = 5;

/**
 * Reads a task's stream with the typed client (clients/typescript), which reconnects with `Last-Event-ID`
 * when the connection drops before a terminal frame (the gateway died), and checks every token's index.
 */
export async function readResumingStream(apiUrl: string, taskId: string, deadline: number): Promise<StreamRecord> {
  const tokens: string[] = [];
  const seen = new Set<number>();
  let duplicates = 0;
  let outOfOrder = 0;
  let connections = 0;
  /** Arrival times of the tokens of the current connection. */
  let arrivals: number[] = [];
  let arrivalsOf = 0;
  const countingFetch: typeof fetch = (input, init) => {
    connections += 1;
    return fetch(input, init);
  };
  const client = new OrchClient({ baseUrl: apiUrl, maxStreamReconnects: Number.MAX_SAFE_INTEGER, fetch: countingFetch });
  const signal = AbortSignal.timeout(Math.max(1, Math.round(deadline - performance.now())));
  const record = (outcome: StreamRecord['outcome'], errorCode?: string): StreamRecord => ({
    outcome,
    errorCode,
    tokens,
    duplicates,
    outOfOrder,
    reconnects: Math.max(0, connections - 1),
    endedAt: outcome === 'lost' ? Number.NaN : performance.now(),
    liveAfterResume: connections > 1 && arrivalsOf === connections && arrivals.some((at, index) => index > 0 && at - (arrivals[index - 1] ?? at) >= LIVE_GAP_MS),
  });
  try {
    for await (const event of client.stream(taskId, { signal })) {
      if (event.event === 'token') {
        if (arrivalsOf !== connections) {
          arrivals = [];
          arrivalsOf = connections;
        }
        arrivals.push(performance.now());
        if (seen.has(event.data.i)) duplicates += 1;
        else if (event.data.i !== seen.size) outOfOrder += 1;
        seen.add(event.data.i);
        tokens.push(event.data.t);
      } else if (event.event === 'end') {
        return record('end');
      } else if (event.event === 'error') {
        return record('error', event.data.code);
      }
    }
  } catch {
    // Past the deadline, or an answer that is not a stream: the task counts as lost.
  }
  return record('lost');
}
