import { EventSource } from 'eventsource';
import { TEST_AUTH_HEADERS } from './stack';

export interface ReceivedEvent {
  readonly event: string;
  readonly id: string;
  readonly data: Record<string, unknown>;
  readonly receivedAt: number;
}

export interface StreamReading {
  readonly events: ReceivedEvent[];
  /** Resolves when an `end` or `error` event arrives (the stream is then closed). */
  readonly finished: Promise<ReceivedEvent[]>;
  close(): void;
}

const EVENT_NAMES = ['started', 'token', 'metrics', 'end', 'error'] as const;

/**
 * Reads a task stream with a real SSE client library (the `eventsource` package). Sends the test
 * tenant's API key unless `headers` says otherwise (the test stack runs with auth on, as `npm start`).
 */
export function readStream(url: string, options: { lastEventId?: string; headers?: Record<string, string> } = {}): StreamReading {
  const events: ReceivedEvent[] = [];
  const source = new EventSource(url, {
    fetch: (input, init) =>
      fetch(input, {
        ...init,
        headers: {
          ...(init.headers as Record<string, string>),
          ...(options.headers ?? TEST_AUTH_HEADERS),
          ...(options.lastEventId !== undefined && !(init.headers as Record<string, string>)['Last-Event-ID']
            ? { 'Last-Event-ID': options.lastEventId }
            : {}),
        },
      }),
  });
  let timeout: NodeJS.Timeout | undefined;
  const finished = new Promise<ReceivedEvent[]>((resolve, reject) => {
    timeout = setTimeout(() => {
      source.close();
      reject(new Error(`stream did not finish; got ${events.map((event) => event.event).join(',')}`));
    }, 45_000);
    for (const name of EVENT_NAMES) {
      source.addEventListener(name, (message) => {
        events.push({ event: name, id: message.lastEventId, data: JSON.parse(String(message.data)) as Record<string, unknown>, receivedAt: performance.now() });
        if (name === 'end' || name === 'error') {
          clearTimeout(timeout);
          source.close();
          resolve(events);
        }
      });
    }
  });
  return {
    events,
    finished,
    // A reader closed on purpose (a client that goes away) never finishes: no timeout fires for it later.
    close: () => {
      clearTimeout(timeout);
      source.close();
    },
  };
}

export function tokensOf(events: readonly ReceivedEvent[]): { text: string; indices: number[] } {
  const tokens = events.filter((event) => event.event === 'token');
  return { text: tokens.map((event) => String(event.data['t'])).join(''), indices: tokens.map((event) => Number(event.data['i'])) };
}

export async function waitFor(predicate: () => boolean | Promise<boolean>, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await predicate()) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}
