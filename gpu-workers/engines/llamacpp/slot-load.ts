import type { EngineLoad, SlotState } from '../engine-adapter';
import { UNKNOWN_ENGINE_LOAD } from '../engine-adapter';

/**
 * The figures from one read of llama-server's slots (GET /slots: `n_ctx`, `n_prompt_tokens`). llama-server
 * lists `n_prompt_tokens` only for a slot that has run a task: a slot without it holds nothing, unless no
 * slot reports it at all (a build that does not say: unknown).
 */
export function engineLoadOf(slots: readonly SlotState[]): EngineLoad {
  if (!slots.some((slot) => slot.heldTokens !== undefined)) return UNKNOWN_ENGINE_LOAD;
  let held = 0;
  let context = 0;
  let inflight = 0;
  for (const slot of slots) {
    const tokens = slot.heldTokens ?? 0;
    held += tokens;
    if (slot.isProcessing) inflight += tokens;
    context += slot.contextTokens ?? 0;
  }
  const everyContextKnown = slots.every((slot) => slot.contextTokens !== undefined);
  return { kvUsedPermille: everyContextKnown && context > 0 ? Math.min(1000, Math.round((1000 * held) / context)) : null, inflightTokens: inflight };
}
