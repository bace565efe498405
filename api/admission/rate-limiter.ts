/**
 * Token buckets per key (pool, class, client) for `rate_limit_rps` (ORCH-3006): the bucket holds up to
 * one second of requests, so a client may burst that much and then sustains the rate.
 */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; updatedAt: number }>();

  constructor(private readonly now: () => number = () => performance.now()) {}

  /** Takes one token; returns 0 when allowed, else the ms until a token is available. */
  take(key: string, ratePerSecond: number): number {
    const capacity = Math.max(1, ratePerSecond);
    const now = this.now();
    const bucket = this.buckets.get(key) ?? { tokens: capacity, updatedAt: now };
    bucket.tokens = Math.min(capacity, bucket.tokens + ((now - bucket.updatedAt) * ratePerSecond) / 1000);
    bucket.updatedAt = now;
    this.buckets.set(key, bucket);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return 0;
    }
    return Math.ceil(((1 - bucket.tokens) * 1000) / ratePerSecond);
  }
}
