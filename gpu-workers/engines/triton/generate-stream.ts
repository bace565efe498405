import type { CompletionSummary, EngineToken } from '../engine-adapter';
import type { SseEvent } from '../llamacpp/sse-events';
import { GenerateFrameSchema } from './triton-api-types';
import type { GenerateFrame } from './triton-api-types';
import { fromModelError, workerReset } from './triton-errors';

const utf8 = new TextDecoder('utf-8');

const STOP_REASONS: Readonly<Record<string, CompletionSummary['stopReason']>> = { eos: 'eos', limit: 'limit', word: 'word' };

function parseFrame(event: SseEvent): GenerateFrame {
  const text = utf8.decode(event.data);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw workerReset(`malformed generate_stream frame: ${text.slice(0, 200)}`, error);
  }
  const parsed = GenerateFrameSchema.safeParse(value);
  if (!parsed.success) throw workerReset(`unexpected generate_stream frame: ${parsed.error.message}`);
  return parsed.data;
}

/**
 * Turns Triton's generate_stream frames (one per model response) into tokens and a summary: a token per
 * frame whose `text_output` is not empty, numbered from 0; the frame with `finish_reason` is the last. The
 * frames are JSON with text fields, so a character is never split across them. The caller's signal is
 * checked before every token, so nothing is forwarded once it has aborted (ORCH-3026).
 */
export async function* readGenerateStream(events: AsyncIterable<SseEvent>, signal: AbortSignal): AsyncGenerator<EngineToken, CompletionSummary, void> {
  let index = 0;
  for await (const event of events) {
    signal.throwIfAborted();
    const frame = parseFrame(event);
    if (frame.error != null) throw fromModelError(frame.error);
    const text = frame.text_output ?? '';
    if (text.length > 0) yield { text, index: index++ };
    if (frame.finish_reason != null) {
      return {
        tokensOut: frame.completion_tokens ?? index,
        tokensIn: frame.prompt_tokens ?? 0,
        stopReason: STOP_REASONS[frame.finish_reason] ?? 'none',
        decodeMs: frame.decode_ms ?? undefined,
      };
    }
  }
  throw workerReset('generate_stream ended before the frame with finish_reason');
}
