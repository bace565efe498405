import type { CompletionSummary, EngineToken } from '../engine-adapter';
import type { SseEvent } from '../llamacpp/sse-events';
import { CompletionChunkSchema } from './vllm-api-types';
import type { CompletionChunk } from './vllm-api-types';
import { fromEngineError, workerReset } from './vllm-errors';

const utf8 = new TextDecoder();

/** What the stream has shown so far, for the adapter's in-flight token count. */
export interface StreamProgress {
  promptTokens: number;
  generatedTokens: number;
}

type StopReason = CompletionSummary['stopReason'];

/**
 * vLLM's `finish_reason` with `stop_reason`: `length` is the max_tokens limit; `stop` with a string
 * stop_reason is a stop string, with null (or a stop token id) the model's end of sequence.
 */
export function mapVllmStopReason(finishReason: string | null | undefined, stopReason: string | number | null | undefined): StopReason {
  if (finishReason === 'length') return 'limit';
  if (finishReason === 'stop') return typeof stopReason === 'string' ? 'word' : 'eos';
  return 'none';
}

function parseChunk(event: SseEvent): CompletionChunk {
  let value: unknown;
  try {
    value = JSON.parse(utf8.decode(event.data));
  } catch (error) {
    throw workerReset(`malformed stream chunk: ${utf8.decode(event.data.subarray(0, 200))}`, error);
  }
  const parsed = CompletionChunkSchema.safeParse(value);
  if (!parsed.success) throw workerReset(`unexpected stream chunk: ${parsed.error.message}`);
  return parsed.data;
}

/**
 * The text of each of a chunk's `count` tokens. vLLM sends one token per chunk while its API server keeps up, and
 * several at once when it falls behind (a loaded CPU), so where a chunk ends must not decide how text is split —
 * the determinism suite compares token by token. Each token's own text (logprobs' `tokens`) is used when it adds up
 * to the chunk's text; when it does not (a stop string trimmed, a character split across tokens), the chunk's text
 * goes with its first token.
 */
export function tokenTexts(tokens: readonly string[] | null | undefined, count: number, text: string): readonly string[] {
  if (tokens != null && tokens.length === count && tokens.join('') === text) return tokens;
  return Array.from({ length: count }, (_unused, at) => (at === 0 ? text : ''));
}

function isDone(event: SseEvent): boolean {
  return event.data.length === 6 && utf8.decode(event.data) === '[DONE]';
}

/**
 * Turns a streamed `/v1/completions` (with `return_token_ids` and usage) into tokens and a summary. vLLM
 * sends one chunk per decode step, so normally one token id per chunk; should a chunk carry several ids,
 * its text goes with the first and the rest are empty tokens, so the count follows the ids. The caller's
 * signal is checked before every token: nothing is forwarded once it has aborted (ORCH-3026).
 */
export async function* readVllmStream(
  events: AsyncIterable<SseEvent>,
  signal: AbortSignal,
  progress: StreamProgress,
): AsyncGenerator<EngineToken, CompletionSummary, void> {
  let index = 0;
  let stopReason: StopReason | undefined;
  let promptTokens: number | undefined;
  for await (const event of events) {
    signal.throwIfAborted();
    if (isDone(event)) break;
    const chunk = parseChunk(event);
    if (chunk.error != null) throw fromEngineError(chunk.error);
    if (chunk.usage != null) promptTokens = chunk.usage.prompt_tokens;
    for (const choice of chunk.choices ?? []) {
      if (choice.prompt_token_ids != null) progress.promptTokens = choice.prompt_token_ids.length;
      const ids = choice.token_ids ?? [];
      const text = choice.text ?? '';
      // Without ids (a server that ignores return_token_ids) a chunk with text is one token.
      const count = ids.length > 0 ? ids.length : text.length > 0 ? 1 : 0;
      const pieces = tokenTexts(choice.logprobs?.tokens, count, text);
      for (let at = 0; at < count; at++) {
        signal.throwIfAborted();
        progress.generatedTokens++;
        yield { text: pieces[at] ?? '', index: index++ };
      }
      if (choice.finish_reason != null) stopReason = mapVllmStopReason(choice.finish_reason, choice.stop_reason);
    }
  }
  if (stopReason === undefined) throw workerReset('stream ended before a finish_reason');
  return { tokensOut: index, tokensIn: promptTokens ?? progress.promptTokens, stopReason };
}
