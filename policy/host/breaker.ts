/**
 * Disables a plugin that fails repeatedly. Closed: calls go to the plugin. After
 * `failureThreshold` consecutive failures: open, every call goes to the built-in policy for
 * `cooldownMs`. Then half-open: one trial call; success closes it, failure opens it again.
 *
 *   closed --N failures--> open --cooldown--> half-open --success--> closed
 *                            ^----------------- failure ---------------'
 */
export type BreakerState = 'closed' | 'open' | 'half-open';

export interface BreakerOptions {
  readonly failureThreshold: number;
  readonly cooldownMs: number;
  /** Injectable for tests; the host passes `Date.now`. */
  readonly now: () => number;
}

export class Breaker {
  private consecutiveFailures = 0;
  private openedAt: number | undefined;
  private trialInFlight = false;

  constructor(private readonly options: BreakerOptions) {}

  get state(): BreakerState {
    if (this.openedAt === undefined) return 'closed';
    return this.options.now() - this.openedAt >= this.options.cooldownMs ? 'half-open' : 'open';
  }

  /** Whether this call may go to the plugin. In half-open, only one trial at a time. */
  allow(): boolean {
    const state = this.state;
    if (state === 'closed') return true;
    if (state === 'open' || this.trialInFlight) return false;
    this.trialInFlight = true;
    return true;
  }

  recordSuccess(): void {
    this.consecutiveFailures = 0;
    this.openedAt = undefined;
    this.trialInFlight = false;
  }

  /** Returns true when this failure opened (or re-opened) the breaker. */
  recordFailure(): boolean {
    this.consecutiveFailures += 1;
    const wasTrial = this.trialInFlight;
    this.trialInFlight = false;
    if (wasTrial || (this.openedAt === undefined && this.consecutiveFailures >= this.options.failureThreshold)) {
      this.openedAt = this.options.now();
      return true;
    }
    return false;
  }

  get failures(): number {
    return this.consecutiveFailures;
  }
}
