import type { Logger } from 'pino';
import type { EngineAdapterV1, SlotState } from '../engines/engine-adapter';

/**
 * A replica's load as its engine reports it, for the status record and so for admission and placement
 * policies (issue 13: policies see real load). Null where the engine does not report the figure.
 */
export interface EngineLoad {
  /** Tokens held in the slots' KV over the slots' context, per mille: running tasks and what idle slots still cache. */
  readonly kvUsedPermille: number | null;
  /** Tokens of the tasks running now: their prompts and what they generated so far. */
  readonly inflightTokens: number | null;
}

export const UNKNOWN_ENGINE_LOAD: EngineLoad = { kvUsedPermille: null, inflightTokens: null };

/**
 * The figures from one read of the engine's slots (llama-server GET /slots: `n_ctx`, `n_prompt_tokens`).
 * llama-server lists `n_prompt_tokens` only for a slot that has run a task: a slot without it holds
 * nothing, unless no slot reports it at all (an engine that does not say: unknown).
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

/**
 * Reads the engine's slots every `intervalMs` while the replica is Ready and hands the load on (the
 * replica publishes it with its slot load, at most once a second). One read at a time; a failed read is
 * skipped — the engine's health is watched elsewhere.
 */
export class EngineLoadSampler {
  private timer: NodeJS.Timeout | undefined;
  private reading = false;

  constructor(
    private readonly adapter: Pick<EngineAdapterV1, 'slots'>,
    private readonly intervalMs: number,
    private readonly onLoad: (load: EngineLoad) => void,
    private readonly logger: Logger,
  ) {}

  start(): void {
    this.stop();
    this.timer = setInterval(() => void this.sample(), this.intervalMs);
    this.timer.unref();
    void this.sample();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private async sample(): Promise<void> {
    if (this.reading) return;
    this.reading = true;
    try {
      const slots = await this.adapter.slots(AbortSignal.timeout(this.intervalMs));
      if (this.timer !== undefined) this.onLoad(engineLoadOf(slots));
    } catch (error) {
      this.logger.debug({ err: error }, 'engine slots not read; load figures unchanged');
    } finally {
      this.reading = false;
    }
  }
}
