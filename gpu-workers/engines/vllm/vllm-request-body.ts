import type { CompletionRequest, SamplerProfileVersion } from '../engine-adapter';

/** vLLM's sampling fields (its `SamplingParams` names, as `/v1/completions` accepts them). */
export interface VllmSamplerParameters {
  readonly temperature: number;
  readonly top_k: number;
  readonly top_p: number;
  readonly min_p: number;
  readonly repetition_penalty: number;
}

/**
 * Sampler profiles as explicit vLLM parameters (OC-ADAPT-5010): the same values as llama.cpp's `v1`. vLLM
 * applies its filters in its own fixed order, so the same values on the two engines are the same profile,
 * not the same random draws. A shipped profile is never edited: add `v2` instead.
 */
export const VLLM_SAMPLER_PROFILES: Readonly<Record<SamplerProfileVersion, VllmSamplerParameters>> = Object.freeze({
  v1: Object.freeze({ temperature: 0.8, top_k: 40, top_p: 0.95, min_p: 0.05, repetition_penalty: 1.0 }),
});

/** The `POST /v1/completions` body the adapter sends. */
export interface VllmCompletionBody extends VllmSamplerParameters {
  readonly model: string;
  /** Text (the tokenizer adds the model's special tokens), or token ids (a chat the template rendered). */
  readonly prompt: string | readonly number[];
  readonly max_tokens: number;
  readonly seed: number;
  readonly stream: true;
  /** The final chunk carries usage: the prompt's token count. */
  readonly stream_options: { readonly include_usage: true };
  /** Token ids in every chunk, so a token is counted by id and not by how its text was split. */
  readonly return_token_ids: true;
  /** The sampled token's own logprob and text, which splits a chunk of several tokens (vllm-stream.ts). */
  readonly logprobs: 0;
  readonly stop?: readonly string[];
}

export function buildVllmCompletionBody(request: CompletionRequest, model: string, prompt: string | readonly number[]): VllmCompletionBody {
  return {
    model,
    prompt,
    max_tokens: request.maxTokens,
    seed: request.seed,
    stream: true,
    stream_options: { include_usage: true },
    return_token_ids: true,
    logprobs: 0,
    ...VLLM_SAMPLER_PROFILES[request.samplerProfile],
    ...(request.sampling?.temperature === undefined ? {} : { temperature: request.sampling.temperature }),
    ...(request.sampling?.top_p === undefined ? {} : { top_p: request.sampling.top_p }),
    ...(request.sampling?.stop === undefined ? {} : { stop: request.sampling.stop }),
  };
}
