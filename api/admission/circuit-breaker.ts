import type { Logger } from 'pino';
import type { OrchConfig } from '../../core/config';
import { ErrorCode, OrchError } from '../../core/errors';

type BreakerConfig = OrchConfig['slo']['breaker'];

/**
 * Per-pool circuit breaker (ORCH-3040): a pool whose tasks breach an SLO for `breach_windows` windows in
 * a row stops admitting for `open_ms`, so the queue drains instead of growing while the SLO is missed.
 * While open, admission answers 503 POOL_UNAVAILABLE with the time left as retry hints; then the breaker
 * closes and the next windows judge again.
 */
export class PoolCircuitBreaker {
  private readonly consecutiveBreaches = new Map<string, number>();
  private readonly openUntil = new Map<string, number>();

  constructor(
    private readonly config: BreakerConfig,
    private readonly logger: Logger,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Feeds one window's verdict: the pools that breached, among those that had tasks (`judged`). */
  onWindow(breachedPools: ReadonlySet<string>, judged: Iterable<string>): void {
    if (!this.config.enabled) return;
    for (const poolId of new Set([...judged, ...breachedPools])) {
      const count = breachedPools.has(poolId) ? (this.consecutiveBreaches.get(poolId) ?? 0) + 1 : 0;
      this.consecutiveBreaches.set(poolId, count);
      if (count >= this.config.breach_windows && !this.isOpen(poolId)) {
        this.openUntil.set(poolId, this.now() + this.config.open_ms);
        this.consecutiveBreaches.set(poolId, 0);
        this.logger.error({ event: 'circuit_breaker_open', pool_id: poolId, open_ms: this.config.open_ms, breached_windows: count }, 'circuit breaker opened: shedding load');
      }
    }
  }

  isOpen(poolId: string): boolean {
    const until = this.openUntil.get(poolId);
    if (until === undefined) return false;
    if (this.now() < until) return true;
    this.openUntil.delete(poolId);
    this.logger.info({ event: 'circuit_breaker_closed', pool_id: poolId }, 'circuit breaker closed');
    return false;
  }

  /** Throws the shed answer while the pool's breaker is open; the admission controller calls this first. */
  check(poolId: string, engine: string): void {
    if (!this.isOpen(poolId)) return;
    const retryAfterMs = Math.max(1_000, Math.ceil((this.openUntil.get(poolId) ?? 0) - this.now()));
    throw new OrchError(ErrorCode.POOL_UNAVAILABLE, 'the pool is shedding load after sustained SLO violations', {
      engine,
      poolId,
      retryAfterMs,
      policyLabel: 'circuit-breaker',
    });
  }

  openPools(): string[] {
    return [...this.openUntil.keys()].filter((poolId) => this.isOpen(poolId));
  }
}
