import type { Logger } from 'pino';
import type { OrchConfig } from '../../core/config';
import type { Priority } from '../../core/engines';
import type { OrchMetrics } from './metrics';

export type SloObjective = 'ttft' | 'decode' | 'errors' | 'throughput';

/** One finished task as the SLOs see it. */
export interface SloSample {
  readonly poolId: string;
  readonly priority: Priority;
  /** performance.now()-style ms when the task ended. */
  readonly at: number;
  readonly ttftMs?: number | undefined;
  readonly decodeMs?: number | undefined;
  readonly tokensOut: number;
  /** False when the task ended in a server-side error. */
  readonly ok: boolean;
}

export interface ObjectiveResult {
  readonly priority: Priority;
  readonly objective: SloObjective;
  readonly attainment: number;
  readonly target: number;
  readonly samples: number;
  /** Enough samples to judge, and the attainment is under the target. */
  readonly breached: boolean;
}

/** Decode SLO is stated for 64 tokens (spec §4.6); longer or shorter tasks scale linearly. */
const DECODE_SLO_TOKENS = 64;
/** A p95 objective is met when 95% of tasks are within the bound. */
const P95 = 0.95;

type SloConfig = OrchConfig['slo'];

/**
 * Measures per-priority SLOs continuously (ORCH-3041) over the last `slo.window_ms`: each objective's
 * attainment (the share of tasks that met it) against its target. Scrapes read it as gauges; every
 * window the gateway judges it, which logs a `slo breach` event when one falls under its target and
 * gives the circuit breaker (ORCH-3040) its per-pool verdicts.
 */
export class SloTracker {
  private samples: SloSample[] = [];
  private readonly breached = new Set<string>();

  constructor(
    private config: SloConfig,
    private readonly logger: Logger,
    private readonly metrics?: OrchMetrics,
  ) {
    this.publishTargets();
  }

  /**
   * A config hot reload (ORCH-3031): new objectives judge the samples already in the window from the next
   * verdict on. The window length and the breaker are fixed at start (api/config-diff.ts).
   */
  reconfigure(next: SloConfig): void {
    this.config = next;
    this.publishTargets();
  }

  private publishTargets(): void {
    for (const { priority, objective, target } of this.objectives()) this.metrics?.set('sloTarget', { priority, objective }, target);
  }

  record(sample: SloSample): void {
    this.samples.push(sample);
  }

  /** Sets slo_attainment_ratio for the window ending now (a scrape collector). */
  publish(now: number): void {
    for (const result of this.judge(this.window(now))) {
      if (result.samples > 0) this.metrics?.set('sloAttainment', { priority: result.priority, objective: result.objective }, result.attainment);
    }
  }

  /** The verdicts over one pool's tasks in the window ending now (GET /v1/replicasets, OC-CTRL-2004). */
  poolSnapshot(poolId: string, now: number): ObjectiveResult[] {
    return this.judge(this.window(now).filter((sample) => sample.poolId === poolId));
  }

  private window(now: number): SloSample[] {
    const windowStart = now - this.config.window_ms;
    // Samples older than the window can never count again.
    this.samples = this.samples.filter((sample) => sample.at > windowStart);
    return this.samples.filter((sample) => sample.at <= now);
  }

  /**
   * Judges the window that ends at `now` (called once per window). Returns the verdict per objective over
   * all pools, the pools whose own tasks breached an objective, and the pools that had tasks at all.
   */
  evaluate(now: number): { overall: ObjectiveResult[]; breachedPools: Set<string>; judgedPools: Set<string> } {
    const window = this.window(now);
    const overall = this.judge(window);
    for (const result of overall) {
      const key = `${result.priority}/${result.objective}`;
      if (result.breached && !this.breached.has(key)) {
        this.breached.add(key);
        this.logger.warn({ event: 'slo_breach', priority: result.priority, objective: result.objective, attainment: result.attainment, target: result.target, samples: result.samples }, 'slo breach');
      } else if (!result.breached && result.samples >= this.config.min_samples && this.breached.delete(key)) {
        this.logger.info({ event: 'slo_recovered', priority: result.priority, objective: result.objective, attainment: result.attainment, target: result.target }, 'slo recovered');
      }
    }
    const breachedPools = new Set<string>();
    const judgedPools = new Set(window.map((sample) => sample.poolId));
    for (const poolId of judgedPools) {
      if (this.judge(window.filter((sample) => sample.poolId === poolId)).some((result) => result.breached)) breachedPools.add(poolId);
    }
    return { overall, breachedPools, judgedPools };
  }

  private judge(window: readonly SloSample[]): ObjectiveResult[] {
    return this.objectives().map(({ priority, objective, target, met }) => {
      const relevant = window.filter((sample) => sample.priority === priority && (objective === 'errors' || sample.ok));
      const measured = relevant.flatMap((sample) => {
        const verdict = met(sample);
        return verdict === undefined ? [] : [verdict];
      });
      const attainment = measured.length === 0 ? 1 : measured.filter(Boolean).length / measured.length;
      return { priority, objective, attainment, target, samples: measured.length, breached: measured.length >= this.config.min_samples && attainment < target };
    });
  }

  private objectives(): { priority: Priority; objective: SloObjective; target: number; met: (sample: SloSample) => boolean | undefined }[] {
    const { interactive, batch } = this.config;
    return [
      { priority: 'interactive', objective: 'ttft', target: P95, met: (sample) => (sample.ttftMs === undefined ? undefined : sample.ttftMs <= interactive.ttft_p95_ms) },
      {
        priority: 'interactive',
        objective: 'decode',
        target: P95,
        met: (sample) =>
          sample.decodeMs === undefined || sample.tokensOut === 0 ? undefined : sample.decodeMs <= (interactive.decode_64_p95_ms * sample.tokensOut) / DECODE_SLO_TOKENS,
      },
      { priority: 'interactive', objective: 'errors', target: 1 - interactive.max_error_rate, met: (sample) => sample.ok },
      { priority: 'batch', objective: 'errors', target: 1 - batch.max_error_rate, met: (sample) => sample.ok },
      {
        priority: 'batch',
        objective: 'throughput',
        target: P95,
        met: (sample) => {
          if (sample.decodeMs === undefined || sample.tokensOut === 0) return undefined;
          // A decode too short to time (0 ms) ran faster than any floor.
          return sample.decodeMs <= 0 || (sample.tokensOut * 1_000) / sample.decodeMs >= batch.min_tokens_per_second;
        },
      },
    ];
  }
}
