/** One bucket per second over the last minute. */
const BUCKETS = 60;
const BUCKET_MS = 1_000;

/**
 * Tokens (prompt and generated, as the engines counted them) each tenant's tasks ended with over the
 * last minute, on this gateway: what an admission policy sees as `tokensLastMinute`. Sixty one-second
 * buckets per tenant, so a lookup is a fixed sum and memory is bounded per tenant.
 */
export class TenantTokenWindow {
  private readonly byTenant = new Map<string, { counts: number[]; seconds: number[] }>();

  record(tenant: string, tokens: number, nowMs: number = Date.now()): void {
    if (tokens <= 0) return;
    const second = Math.floor(nowMs / BUCKET_MS);
    let window = this.byTenant.get(tenant);
    if (!window) this.byTenant.set(tenant, (window = { counts: new Array<number>(BUCKETS).fill(0), seconds: new Array<number>(BUCKETS).fill(-1) }));
    const slot = second % BUCKETS;
    if (window.seconds[slot] !== second) {
      window.seconds[slot] = second;
      window.counts[slot] = 0;
    }
    window.counts[slot] = (window.counts[slot] ?? 0) + tokens;
  }

  lastMinute(tenant: string, nowMs: number = Date.now()): number {
    const window = this.byTenant.get(tenant);
    if (!window) return 0;
    const second = Math.floor(nowMs / BUCKET_MS);
    let sum = 0;
    for (let slot = 0; slot < BUCKETS; slot += 1) {
      const at = window.seconds[slot] ?? -1;
      if (at > second - BUCKETS && at <= second) sum += window.counts[slot] ?? 0;
    }
    return sum;
  }
}
