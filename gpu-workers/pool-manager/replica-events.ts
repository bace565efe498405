import type { ReplicaFailureKind } from '../../core/replica-status';

export interface ReplicaEventCounts {
  readonly eviction_events: number;
  readonly oom_events: number;
  readonly driver_reset_events: number;
  /** ORCH-3053: engine deaths classified as GPU memory (ECC) errors, apart from driver resets. */
  readonly ecc_events: number;
}

/**
 * A replica's failure history as the ORCH-3027 counters its job lines carry: each engine crash the
 * supervisor classifies as VRAM or host OOM, as a driver reset, or as an ECC error (ORCH-3053, counted
 * apart from driver resets), counts once for the life of the pool worker process.
 */
export class ReplicaEventCounters {
  private oom = 0;
  private driverReset = 0;
  private ecc = 0;

  record(kind: ReplicaFailureKind): void {
    if (kind === 'vram_oom' || kind === 'host_oom') this.oom += 1;
    else if (kind === 'driver_reset') this.driverReset += 1;
    else if (kind === 'ecc_error') this.ecc += 1;
  }

  snapshot(): ReplicaEventCounts {
    // Queue evictions (drop-lru) happen in the gateway before a task reaches any replica; the replica's
    // own evictions are of session KV, counted by its KV residency (the engine activity adds them).
    return { eviction_events: 0, oom_events: this.oom, driver_reset_events: this.driverReset, ecc_events: this.ecc };
  }
}
