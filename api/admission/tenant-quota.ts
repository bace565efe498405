import type { OrchConfig } from '../../core/config';
import { ErrorCode, OrchError } from '../../core/errors';
import { SECURITY_DEFAULTS } from '../../core/security-config';
import type { PoolLedger } from './pool-ledger';

type QuotaConfig = OrchConfig['quotas'];

interface Reservation {
  readonly tenant: string;
  readonly poolId: string;
  readonly memoryBytes: number;
}

export interface TenantUsage {
  readonly jobs: number;
  readonly memoryBytes: number;
}

/** Quota answers carry this hint: a slot frees when one of the tenant's own jobs ends. */
const QUOTA_RETRY_AFTER_MS = 1_000;

/**
 * Per-tenant quotas (ORCH-3036): concurrent jobs (queued + running) and the KV + scratch memory they
 * reserve (ctx × kv_bytes_per_token + scratch_bytes_per_job each). The pool ledger is the record of which
 * tasks are still alive on this gateway; it tells us when a task leaves, and the reservation is released
 * then, so a check costs O(1) however deep the queue. Other
 * gateways' jobs are not counted: with N gateways a tenant can reach N × its quota (docs/operations.md).
 */
export class TenantQuotas {
  private readonly reservations = new Map<string, Reservation>();
  private readonly usageByTenant = new Map<string, { jobs: number; memoryBytes: number }>();
  /** Tenants that reserved here, so their gauges read 0 when idle instead of vanishing. */
  private readonly knownTenants = new Set<string>();

  constructor(
    private config: QuotaConfig,
    ledger: Pick<PoolLedger, 'onForget'>,
  ) {
    ledger.onForget((taskId) => this.release(taskId));
  }

  /** A config hot reload (api/config-reloader.ts): new limits apply to the next check; reservations stay. */
  reconfigure(config: QuotaConfig): void {
    this.config = config;
  }

  memoryOf(ctx: number): number {
    return ctx * this.config.kv_bytes_per_token + this.config.scratch_bytes_per_job;
  }

  /**
   * Admits the task under its tenant's quota or throws 429 ADMISSION_REJECT (`policy_label: tenant-quota`).
   * Must run synchronously just before the ledger records the task, so no release can slip in between.
   */
  reserve(tenant: string, poolId: string, taskId: string, ctx: number, engine: string): void {
    const limits = this.limitsOf(tenant);
    const usage = this.usageOf(tenant);
    const memoryBytes = this.memoryOf(ctx);
    const details = { engine, poolId, retryAfterMs: QUOTA_RETRY_AFTER_MS, policyLabel: 'tenant-quota' };
    if (limits.maxJobs !== undefined && usage.jobs + 1 > limits.maxJobs) {
      throw new OrchError(ErrorCode.ADMISSION_REJECT, `tenant ${tenant} is at its quota of ${limits.maxJobs} concurrent jobs`, details);
    }
    if (limits.maxMemoryBytes !== undefined && usage.memoryBytes + memoryBytes > limits.maxMemoryBytes) {
      throw new OrchError(
        ErrorCode.ADMISSION_REJECT,
        `tenant ${tenant} would reserve ${usage.memoryBytes + memoryBytes} bytes of KV + scratch, over its quota of ${limits.maxMemoryBytes}`,
        details,
      );
    }
    if (this.reservations.has(taskId)) return;
    this.reservations.set(taskId, { tenant, poolId, memoryBytes });
    this.knownTenants.add(tenant);
    const current = this.usageByTenant.get(tenant) ?? { jobs: 0, memoryBytes: 0 };
    this.usageByTenant.set(tenant, { jobs: current.jobs + 1, memoryBytes: current.memoryBytes + memoryBytes });
  }

  /** The ledger forgot the task: its reservation ends. */
  release(taskId: string): void {
    const reservation = this.reservations.get(taskId);
    if (!reservation) return;
    this.reservations.delete(taskId);
    const current = this.usageByTenant.get(reservation.tenant);
    if (!current) return;
    current.jobs -= 1;
    current.memoryBytes -= reservation.memoryBytes;
  }

  usage(): Map<string, TenantUsage> {
    return new Map([...this.knownTenants].map((tenant) => [tenant, { ...(this.usageByTenant.get(tenant) ?? { jobs: 0, memoryBytes: 0 }) }]));
  }

  private usageOf(tenant: string): TenantUsage {
    return this.usageByTenant.get(tenant) ?? { jobs: 0, memoryBytes: 0 };
  }

  private limitsOf(tenant: string): { maxJobs: number | undefined; maxMemoryBytes: number | undefined } {
    // Unset falls back to the default entry, then to SECURITY_DEFAULTS; an explicit null means unbounded.
    const own = this.config.tenants.find((entry) => entry.tenant === tenant);
    const pick = (ownValue: number | null | undefined, defaultValue: number | null | undefined, builtIn: number): number | undefined => {
      const value = ownValue !== undefined ? ownValue : defaultValue !== undefined ? defaultValue : builtIn;
      return value ?? undefined;
    };
    return {
      maxJobs: pick(own?.max_concurrent_jobs, this.config.default.max_concurrent_jobs, SECURITY_DEFAULTS.maxConcurrentJobs),
      maxMemoryBytes: pick(own?.max_memory_bytes, this.config.default.max_memory_bytes, SECURITY_DEFAULTS.maxMemoryBytes),
    };
  }

}
