import type { OrchConfig } from '../../core/config';
import type { ReplicaDirectory } from '../replica-directory';
import type { OrchMetrics } from './metrics';

/**
 * OC-POOL-3030 / ORCH-3028: each replica's engine launches by outcome, exported at scrape time from the
 * replica directory (the replicas' own status records), so every gateway shows every replica's counts.
 */
export function registerReplicaCollectors(config: OrchConfig, metrics: OrchMetrics, replicas: Pick<ReplicaDirectory, 'replicas'>): void {
  metrics.addCollector(() => {
    for (const pool of config.pools) {
      for (const status of replicas.replicas(pool.id)) {
        for (const [outcome, count] of Object.entries(status.launch_outcomes ?? {})) {
          metrics.set('replicaEngineLaunches', { pool_id: pool.id, replica_id: status.replica_id, outcome }, count);
        }
      }
    }
  });
}
