import { setTimeout as sleep } from 'node:timers/promises';
import { request, type Dispatcher } from 'undici';

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
}

/**
 * Reads a task's SSE stream the way a careful client does: when the connection drops before a terminal
 * frame (the gateway died), it connects again, to the same URL, with `Last-Event-ID`, until `deadline`.
 */
export async function readResumingStream(dispatcher: Dispatcher, url: string, deadline: number): Promise<StreamRecord> {
  const tokens: string[] = [];
  const seen = new Set<number>();
  let duplicates = 0;
  let outOfOrder = 0;
  let reconnects = -1;
  let lastEventId: string | undefined;
  while (performance.now() < deadline) {
    reconnects += 1;
    try {
      const response = await request(url, {
        dispatcher,
        headers: lastEventId === undefined ? {} : { 'last-event-id': lastEventId },
        bodyTimeout: 30_000,
        headersTimeout: 10_000,
      });
      if (response.statusCode !== 200) {
        await response.body.dump();
        await sleep(250);
        continue;
      }
      let buffered = '';
      let event = '';
      let id: string | undefined;
      for await (const chunk of response.body) {
        buffered += (chunk as Buffer).toString('utf8');
        let newline = buffered.indexOf('\n');
        while (newline >= 0) {
          const line = buffered.slice(0, newline);
          buffered = buffered.slice(newline + 1);
          newline = buffered.indexOf('\n');
          if (line.startsWith('id:')) id = line.slice(3).trim();
          else if (line.startsWith('event:')) event = line.slice(6).trim();
          else if (line.startsWith('data:')) {
            if (id !== undefined) lastEventId = id;
            const data = JSON.parse(line.slice(5)) as { t?: string; i?: number; code?: string };
            if (event === 'token') {
              const index = Number(data.i);
              if (seen.has(index)) duplicates += 1;
              else if (index !== seen.size) outOfOrder += 1;
              seen.add(index);
              tokens.push(String(data.t));
            } else if (event === 'end' || event === 'error') {
              await response.body.dump().catch(() => undefined);
              return { outcome: event, errorCode: data.code, tokens, duplicates, outOfOrder, reconnects, endedAt: performance.now() };
            }
          } else if (line === '') {
            event = '';
            id = undefined;
          }
        }
      }
    } catch {
      // The gateway went away mid-stream or is not back yet: try again below.
    }
    await sleep(250);
  }
  return { outcome: 'lost', errorCode: undefined, tokens, duplicates, outOfOrder, reconnects, endedAt: Number.NaN };
}
