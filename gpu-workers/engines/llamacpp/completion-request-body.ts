import type { CompletionRequest } from '../engine-adapter';
import { samplerParameters } from './sampler-profiles';
import type { LlamaCppSamplerParameters } from './sampler-profiles';

/** The native POST /completion body the adapter sends (engines.md §1.2). */
export interface LlamaCppCompletionBody extends LlamaCppSamplerParameters {
  readonly prompt: string;
  readonly n_predict: number;
  readonly seed: number;
  readonly stream: true;
  /**
   * Off unless a best_effort session turn asks: a cached prompt prefix is evaluated with another batch
   * shape, which can change logits (§1.6), so strict tasks never reuse the cache.
   */
  readonly cache_prompt: boolean;
  /** -1 lets llama-server pick an idle slot. */
  readonly id_slot: number;
  /** Token ids in every chunk: a count that does not depend on how text was split. */
  readonly return_tokens: true;
  /** Stop strings (an OpenAI request's `stop`); the stop reason is then `word`. */
  readonly stop?: readonly string[];
}

/** `prompt` is the text sent: the request's own, or its chat rendered by the model's template. */
export function buildCompletionBody(request: CompletionRequest, prompt: string): LlamaCppCompletionBody {
  return {
    prompt,
    n_predict: request.maxTokens,
    seed: request.seed,
    stream: true,
    cache_prompt: request.cachePrompt ?? false,
    id_slot: request.slotId ?? -1,
    return_tokens: true,
    ...samplerParameters(request.samplerProfile),
    ...(request.sampling?.temperature === undefined ? {} : { temperature: request.sampling.temperature }),
    ...(request.sampling?.top_p === undefined ? {} : { top_p: request.sampling.top_p }),
    ...(request.sampling?.stop === undefined ? {} : { stop: request.sampling.stop }),
  };
}
