import type { CompletionSummary } from '../engine-adapter';
import type { CompletionChunk } from './llamacpp-api-types';

/**
 * The final chunk's stop reason, in both shapes llama-server has used: `stop_type` (newer builds)
 * or the `stopped_eos` / `stopped_word` / `stopped_limit` booleans (older ones). Anything else is
 * 'none', llama-server's own word for "stopped for another reason".
 */
export function mapLlamaCppStopReason(
  chunk: Pick<CompletionChunk, 'stop_type' | 'stopped_eos' | 'stopped_word' | 'stopped_limit'>,
): CompletionSummary['stopReason'] {
  switch (chunk.stop_type) {
    case 'eos':
    case 'limit':
    case 'word':
    case 'none':
      return chunk.stop_type;
    default:
      break;
  }
  if (chunk.stopped_eos === true) return 'eos';
  if (chunk.stopped_word === true) return 'word';
  if (chunk.stopped_limit === true) return 'limit';
  return 'none';
}
