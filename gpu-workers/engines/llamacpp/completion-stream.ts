import type { CompletionSummary, EngineToken } from '../engine-adapter';
import { parseEventPayload, rawStringBytes } from './event-payload';
import type { EventPayload } from './event-payload';
import { CompletionChunkSchema } from './llamacpp-api-types';
import { fromEngineError, workerReset } from './llamacpp-errors';
import { mapLlamaCppStopReason } from './map-llamacpp-stop-reason';
import type { SseEvent } from './sse-events';
import { Utf8TokenText } from './utf8-token-text';

function decodePayload(event: SseEvent): EventPayload {
  try {
    return parseEventPayload(event.data);
  } catch (error) {
    throw workerReset(`malformed stream chunk: ${Buffer.from(event.data).toString('utf8', 0, 200)}`, error);
  }
}

/** An error event's data: `{"error":{…}}`, a bare `{code,message,type}`, or plain text. */
function errorEventFailure(event: SseEvent): Error {
  let value: unknown;
  try {
    value = parseEventPayload(event.data).value;
  } catch {
    return fromEngineError(Buffer.from(event.data).toString('utf8', 0, 200));
  }
  const chunk = CompletionChunkSchema.safeParse(value);
  if (chunk.success && chunk.data.error != null) return fromEngineError(chunk.data.error);
  const bare = CompletionChunkSchema.shape.error.safeParse(value);
  return fromEngineError(bare.success ? bare.data : undefined);
}

/**
 * Turns llama-server's native /completion event stream into tokens and a summary: one token per
 * partial chunk whose (normalized) content is not empty, numbered from 0; the final chunk
 * (`stop:true`) ends the stream. The caller's signal is checked before every token, so nothing is
 * forwarded once it has aborted, whatever is still buffered (ORCH-3026).
 */
export async function* readCompletionStream(
  events: AsyncIterable<SseEvent>,
  signal: AbortSignal,
): AsyncGenerator<EngineToken, CompletionSummary, void> {
  const text = new Utf8TokenText();
  let index = 0;
  let tokenIdsSeen = 0;
  let slotId: number | undefined;
  for await (const event of events) {
    signal.throwIfAborted();
    if (event.type === 'error') throw errorEventFailure(event);
    // The native endpoint sends no [DONE]; if some build does, the stream is over.
    if (event.data.length === 6 && Buffer.from(event.data).toString('latin1') === '[DONE]') break;
    const payload = decodePayload(event);
    const parsed = CompletionChunkSchema.safeParse(payload.value);
    if (!parsed.success) throw workerReset(`unexpected stream chunk: ${parsed.error.message}`);
    const chunk = parsed.data;
    if (chunk.error != null) throw fromEngineError(chunk.error);
    // Partial chunks of current builds say id_slot -1 ("not assigned"); only the final one names the slot.
    if (chunk.id_slot != null && chunk.id_slot >= 0) slotId = chunk.id_slot;
    tokenIdsSeen += chunk.tokens?.length ?? 0;
    const content = chunk.content ?? '';
    if (content.length > 0) {
      const piece = payload.rawByteStrings ? text.pushBytes(rawStringBytes(content)) : text.pushText(content);
      if (piece.length > 0) {
        signal.throwIfAborted();
        yield { text: piece, index: index++, slotId };
      }
    }
    if (chunk.stop === true) {
      text.end();
      return {
        tokensOut: chunk.tokens_predicted ?? (tokenIdsSeen > 0 ? tokenIdsSeen : index),
        tokensIn: chunk.tokens_evaluated ?? 0,
        stopReason: mapLlamaCppStopReason(chunk),
        decodeMs: chunk.timings?.predicted_ms ?? undefined,
        slotId,
        tokensCached: chunk.tokens_cached ?? undefined,
        promptTokensFromCache: chunk.timings?.cache_n ?? undefined,
      };
    }
  }
  throw workerReset('stream ended before the final chunk');
}
