import { request, type Dispatcher } from 'undici';

export interface StreamTiming {
  /** From the first byte of the request that started the work to the first token. */
  readonly ttftMs: number;
  /** Tokens after the first, over the time from the first to the last token. */
  readonly tokensPerSecond: number;
  readonly tokens: number;
  /** Orchestrated only: when the `dispatched` metrics frame arrived, from the start. */
  readonly dispatchedMs?: number | undefined;
}

/**
 * Reads an SSE body and times its tokens. `isToken` decides from an event's name and data line; the
 * engine sends bare `data:` lines, the orchestrator named `token` events.
 */
export async function timeSseTokens(
  body: AsyncIterable<Buffer>,
  startedAt: number,
  isToken: (event: string | undefined, data: string) => boolean,
): Promise<StreamTiming> {
  let buffered = '';
  let event: string | undefined;
  let first = Number.NaN;
  let last = Number.NaN;
  let tokens = 0;
  let dispatchedMs: number | undefined;
  for await (const chunk of body) {
    buffered += chunk.toString('utf8');
    let newline = buffered.indexOf('\n');
    while (newline >= 0) {
      const line = buffered.slice(0, newline);
      buffered = buffered.slice(newline + 1);
      if (line.startsWith('event:')) event = line.slice(6).trim();
      else if (line.startsWith('data:')) {
        if (event === 'metrics' && dispatchedMs === undefined && line.includes('"phase":"dispatched"')) dispatchedMs = performance.now() - startedAt;
        if (isToken(event, line.slice(5))) {
          const now = performance.now();
          if (tokens === 0) first = now;
          last = now;
          tokens += 1;
        }
      } else if (line === '') event = undefined;
      newline = buffered.indexOf('\n');
    }
  }
  const decodeSeconds = (last - first) / 1000;
  return { ttftMs: first - startedAt, tokensPerSecond: tokens > 1 && decodeSeconds > 0 ? (tokens - 1) / decodeSeconds : Number.NaN, tokens, dispatchedMs };
}

export async function postJson(dispatcher: Dispatcher, url: string, body: unknown): Promise<{ status: number; text: string }> {
  const response = await request(url, { method: 'POST', dispatcher, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: response.statusCode, text: await response.body.text() };
}
