import { PLACEMENT_REASONS } from '../../core/task-workflow-contract';
import type { OrchMetrics } from './metrics';

/**
 * Replica frames turned into metrics: placement outcomes from `dispatched` frames, and KV pressure per
 * replica (ORCH-3028, ORCH-3022) from the `kv` metrics frames replicas send before each
 * `end`: resident sessions and bytes as last reported, and evictions as the growth of the replica's
 * running total (a smaller total means the replica restarted and counts from zero again).
 */
export class ReplicaFrameMetrics {
  private readonly evictionTotals = new Map<string, number>();

  constructor(
    private readonly metrics: OrchMetrics,
    poolIds: readonly string[],
  ) {
    // Every series of the lane hit rate exists from the start, so a rate is 0 rather than absent.
    for (const poolId of poolIds) {
      for (const reason of PLACEMENT_REASONS) for (const outcome of ['lane', 'fallback']) metrics.inc('placementDecisions', { pool_id: poolId, reason, outcome }, 0);
    }
  }

  observe(poolId: string, engine: string, values: Readonly<Record<string, unknown>>): void {
    this.observePlacement(poolId, values);
    if (values['phase'] !== 'kv' || typeof values['replica_id'] !== 'string') return;
    const labels = {
      engine,
      engine_version: typeof values['engine_version'] === 'string' ? values['engine_version'] : 'unknown',
      pool_id: poolId,
      replica_id: values['replica_id'],
    };
    const number = (key: string): number => (typeof values[key] === 'number' ? values[key] : 0);
    this.metrics.set('kvSessionsResident', labels, number('kv_sessions_resident'));
    this.metrics.set('kvResidentBytes', labels, number('kv_resident_bytes'));
    const total = number('kv_evictions_total');
    const seen = this.evictionTotals.get(labels.replica_id) ?? 0;
    const growth = total >= seen ? total - seen : total;
    this.evictionTotals.set(labels.replica_id, total);
    this.metrics.inc('kvEvictions', labels, growth);
  }

  /** The lane hit rate of placed tasks: each placed dispatch says whether its lane took it. */
  private observePlacement(poolId: string, values: Readonly<Record<string, unknown>>): void {
    if (values['phase'] !== 'dispatched' || typeof values['lane_hit'] !== 'boolean' || typeof values['placement_reason'] !== 'string') return;
    this.metrics.inc('placementDecisions', { pool_id: poolId, reason: values['placement_reason'], outcome: values['lane_hit'] ? 'lane' : 'fallback' });
  }
}
