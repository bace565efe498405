import type { SamplerProfileVersion } from '../engine-adapter';

/** A llama-server sampler name, as accepted in the /completion `samplers` chain. */
export type LlamaCppSamplerName = 'top_k' | 'top_p' | 'min_p' | 'temperature';

/** Wire names on purpose: these fields go into the /completion body as they are. */
export interface LlamaCppSamplerParameters {
  readonly temperature: number;
  readonly top_k: number;
  readonly top_p: number;
  readonly min_p: number;
  readonly repeat_penalty: number;
  /** The full ordered chain; a sampler left out is not applied. */
  readonly samplers: readonly LlamaCppSamplerName[];
}

/**
 * Sampler profiles as explicit parameters (OC-ADAPT-5010, ORCH-3058). Every value and the chain
 * itself are spelled out, so a change in llama-server's defaults (its default chain is
 * `penalties;dry;top_n_sigma;top_k;typ_p;top_p;min_p;xtc;temperature` today) cannot change the
 * output of a pinned profile. A profile is never edited once shipped: add `v2` instead.
 */
export const SAMPLER_PROFILES: Readonly<Record<SamplerProfileVersion, LlamaCppSamplerParameters>> = Object.freeze({
  v1: Object.freeze({
    temperature: 0.8,
    top_k: 40,
    top_p: 0.95,
    min_p: 0.05,
    repeat_penalty: 1.0,
    samplers: Object.freeze(['top_k', 'top_p', 'min_p', 'temperature'] as const),
  }),
});

export function samplerParameters(profile: SamplerProfileVersion): LlamaCppSamplerParameters {
  return SAMPLER_PROFILES[profile];
}
