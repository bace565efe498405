import type { CompletionRequest, SamplerProfileVersion } from '../engine-adapter';

/** `GenerateParameters` of router/src/lib.rs, the fields the adapter sets (wire names on purpose). */
export interface TgiGenerateParameters {
  readonly max_new_tokens: number;
  readonly seed: number;
  readonly do_sample: boolean;
  readonly temperature?: number;
  readonly top_k?: number;
  readonly top_p?: number;
  readonly repetition_penalty?: number;
  readonly stop: readonly string[];
  /** The last event then carries `StreamDetails` (finish reason, counts); serde's default is false. */
  readonly details: true;
  readonly return_full_text: false;
}

export interface TgiGenerateRequest {
  readonly inputs: string;
  readonly parameters: TgiGenerateParameters;
}

interface TgiSampler {
  readonly temperature: number;
  readonly top_k: number;
  readonly top_p: number;
  readonly repetition_penalty: number;
}

/**
 * Sampler profiles in TGI's terms (OC-ADAPT-5010). `v1` is llama.cpp's v1 (sampler-profiles.ts) less `min_p`,
 * which TGI has no parameter for: the same profile yields other tokens on TGI than on llama.cpp in any case (another
 * sampler implementation). A profile is never edited once shipped.
 */
const TGI_SAMPLER_PROFILES: Readonly<Record<SamplerProfileVersion, TgiSampler>> = Object.freeze({
  v1: Object.freeze({ temperature: 0.8, top_k: 40, top_p: 0.95, repetition_penalty: 1.0 }),
});

/**
 * The POST /generate_stream body. TGI's validation (router/src/validation.rs) wants temperature > 0 and
 * 0 < top_p < 1, and samples when any warper is set: temperature 0 means greedy (do_sample false, no warper sent),
 * top_p 1 means no nucleus filter (top_p left out).
 */
export function buildGenerateRequest(request: CompletionRequest, inputs: string): TgiGenerateRequest {
  const profile = TGI_SAMPLER_PROFILES[request.samplerProfile];
  const temperature = request.sampling?.temperature ?? profile.temperature;
  const topP = request.sampling?.top_p ?? profile.top_p;
  const stop = request.sampling?.stop ?? [];
  const common = { max_new_tokens: request.maxTokens, seed: request.seed, stop, details: true, return_full_text: false } as const;
  if (temperature <= 0) return { inputs, parameters: { ...common, do_sample: false } };
  return {
    inputs,
    parameters: {
      ...common,
      do_sample: true,
      temperature,
      top_k: profile.top_k,
      ...(topP < 1 ? { top_p: topP } : {}),
      repetition_penalty: profile.repetition_penalty,
    },
  };
}
