/** Restart backoff and circuit breaker settings (OC-POOL-3011); config `engine_runtime.restart`. */
export interface RestartPolicySettings {
  readonly initialBackoffMs: number;
  readonly maxBackoffMs: number;
  /** Failures within `breakerWindowMs` that open the breaker. */
  readonly breakerFailures: number;
  readonly breakerWindowMs: number;
  readonly breakerCooldownMs: number;
}

export type RestartDecision =
  | { readonly action: 'restart'; readonly delayMs: number }
  | { readonly action: 'breaker-open'; readonly delayMs: number };

/**
 * Decides how long to wait before the next engine start. Backoff doubles with each consecutive
 * failure up to `maxBackoffMs`; a replica that stayed Ready for a whole breaker window starts over.
 * When `breakerFailures` failures fall within `breakerWindowMs`, the breaker opens: one trial start
 * after the cooldown, and the breaker reopens at once if that trial fails too. So a replica whose
 * engine dies at every start costs at most `breakerFailures` starts per window, then one per cooldown.
 */
export class RestartPolicy {
  private failureTimesMs: number[] = [];
  private consecutiveFailures = 0;
  private halfOpen = false;
  private readySinceMs: number | undefined;

  constructor(private readonly settings: RestartPolicySettings) {}

  recordFailure(nowMs: number): RestartDecision {
    if (this.readySinceMs !== undefined && nowMs - this.readySinceMs >= this.settings.breakerWindowMs) this.consecutiveFailures = 0;
    this.readySinceMs = undefined;
    this.consecutiveFailures += 1;
    this.failureTimesMs = [...this.failureTimesMs.filter((time) => nowMs - time < this.settings.breakerWindowMs), nowMs];
    if (this.halfOpen || this.failureTimesMs.length >= this.settings.breakerFailures) {
      this.halfOpen = true;
      return { action: 'breaker-open', delayMs: this.settings.breakerCooldownMs };
    }
    const delayMs = Math.min(this.settings.maxBackoffMs, this.settings.initialBackoffMs * 2 ** (this.consecutiveFailures - 1));
    return { action: 'restart', delayMs };
  }

  /** The engine passed its self-test: a trial start after the cooldown closes the breaker. */
  recordReady(nowMs: number): void {
    this.readySinceMs = nowMs;
    if (this.halfOpen) {
      this.halfOpen = false;
      this.failureTimesMs = [];
      this.consecutiveFailures = 0;
    }
  }
}
