import type { OrchMetrics } from './metrics';

/**
 * KV pressure per replica (ORCH-3028, ORCH-3022) from the `kv` metrics frames replicas send before each
 * `end`: resident sessions and bytes as last reported, and evictions as the growth of the replica's
 * running total (a smaller total means the replica restarted and counts from zero again).
 */
export class KvPressure {
  private readonly evictionTotals = new Map<string, number>();

  constructor(private readonly metrics: OrchMetrics) {}

  observe(poolId: string, engine: string, values: Readonly<Record<string, unknown>>): void {
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
}
