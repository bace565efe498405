import type { CompletionSummary, EngineToken } from '../engine-adapter';
import type { SseEvent } from '../llamacpp/sse-events';
import { TgiErrorResponseSchema, TgiStreamResponseSchema } from './tgi-api-types';
import { fromErrorResponse, workerReset } from './tgi-errors';

const utf8 = new TextDecoder();

/** `FinishReason` of router/src/lib.rs onto the contract's stop reasons. */
export function mapTgiFinishReason(reason: string | null | undefined): CompletionSummary['stopReason'] {
  switch (reason) {
    case 'length':
      return 'limit';
    case 'eos_token':
      return 'eos';
    case 'stop_sequence':
      return 'word';
    default:
      return 'none';
  }
}

function parseData(event: SseEvent): unknown {
  const text = utf8.decode(event.data);
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw workerReset(`malformed stream event: ${text.slice(0, 200)}`, error);
  }
}

/**
 * Turns TGI's /generate_stream events into tokens and a summary. Each event is one `StreamResponse`; the last has
 * `generated_text` (and `details`, which the adapter always asks for); TGI sends no `[DONE]`. An event that is an
 * `ErrorResponse` is a failure, also before any token (TGI answers 200 and reports overload and validation errors as
 * the stream's only event). Special tokens (EOS) and empty texts (TGI holds back half a UTF-8 character and sends it
 * with the next token) yield no token. The caller's signal is checked before every token (ORCH-3026).
 */
export async function* readTgiStream(events: AsyncIterable<SseEvent>, signal: AbortSignal): AsyncGenerator<EngineToken, CompletionSummary, void> {
  let index = 0;
  let eventsSeen = 0;
  for await (const event of events) {
    signal.throwIfAborted();
    const value = parseData(event);
    const failure = TgiErrorResponseSchema.safeParse(value);
    if (failure.success) throw fromErrorResponse(failure.data);
    const parsed = TgiStreamResponseSchema.safeParse(value);
    if (!parsed.success) throw workerReset(`unexpected stream event: ${parsed.error.message}`);
    const response = parsed.data;
    eventsSeen++;
    if (response.token.special !== true && response.token.text.length > 0) {
      signal.throwIfAborted();
      yield { text: response.token.text, index: index++ };
    }
    if (response.generated_text != null) {
      const details = response.details;
      return {
        tokensOut: details?.generated_tokens ?? eventsSeen,
        tokensIn: details?.input_length ?? 0,
        stopReason: mapTgiFinishReason(details?.finish_reason),
      };
    }
  }
  throw workerReset('stream ended before its last event (no generated_text)');
}
