/** An SSE frame as read off the wire: `id`, `event` and the `data` lines joined. */
export interface RawSseFrame {
  readonly id: string | undefined;
  readonly event: string;
  readonly data: string;
}

/** Parses an SSE body (text/event-stream) into frames; comment lines (keepalives) are skipped. */
export async function* parseSse(body: AsyncIterable<Uint8Array>): AsyncGenerator<RawSseFrame> {
  const decoder = new TextDecoder();
  let buffered = '';
  let id: string | undefined;
  let event = 'message';
  let data: string[] = [];
  for await (const chunk of body) {
    buffered += decoder.decode(chunk, { stream: true });
    let newline = buffered.indexOf('\n');
    while (newline >= 0) {
      const line = buffered.slice(0, newline).replace(/\r$/, '');
      buffered = buffered.slice(newline + 1);
      newline = buffered.indexOf('\n');
      if (line === '') {
        if (data.length > 0) yield { id, event, data: data.join('\n') };
        id = undefined;
        event = 'message';
        data = [];
      } else if (line.startsWith(':')) {
        continue;
      } else {
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'id') id = value;
        else if (field === 'event') event = value;
        else if (field === 'data') data.push(value);
      }
    }
  }
}
