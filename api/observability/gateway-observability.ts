import type { Logger } from 'pino';
import type { OrchConfig } from '../../core/config';
import { POOL_DEFAULTS } from '../../core/config';
import { PRIORITIES } from '../../core/engines';
import { PoolCircuitBreaker } from '../admission/circuit-breaker';
import type { TenantQuotas } from '../admission/tenant-quota';
import { configuredSlots } from '../pool-selection';
import { HostResources } from './host-resources';
import { JobTelemetry } from './job-telemetry';
import { OrchMetrics } from './metrics';
import { SloTracker } from './slo-tracker';
import type { SupervisedProcessStatus } from '../../core/supervised-process';

export interface GatewayObservability {
  readonly metrics: OrchMetrics;
  readonly telemetry: JobTelemetry;
  readonly slo: SloTracker;
  readonly breaker: PoolCircuitBreaker;
  stop(): void;
}

/** Metrics, job telemetry, SLO windows and the breaker for one gateway; the SLO window timer starts here. */
export function createGatewayObservability(config: OrchConfig, logger: Logger): GatewayObservability {
  const metrics = new OrchMetrics();
  const slo = new SloTracker(config.slo, logger, metrics);
  const breaker = new PoolCircuitBreaker(config.slo.breaker, logger);
  const telemetry = new JobTelemetry(metrics, logger, slo);
  new HostResources().register(metrics);
  const timer = setInterval(() => {
    const { breachedPools, judgedPools } = slo.evaluate(performance.now());
    breaker.onWindow(breachedPools, judgedPools);
  }, config.slo.window_ms);
  timer.unref();
  return { metrics, telemetry, slo, breaker, stop: () => clearInterval(timer) };
}

export interface CollectorSources {
  readonly depth: (poolId: string) => { interactive: number; batch: number };
  readonly readyReplicas: (poolId: string) => number;
  readonly quotas: TenantQuotas;
  readonly supervision: () => readonly SupervisedProcessStatus[];
}

/** Gauges read at scrape time from their sources: queue depth, KV pressure, readiness, breakers, tenants. */
export function registerGatewayCollectors(config: OrchConfig, observability: GatewayObservability, sources: CollectorSources): void {
  const { metrics, telemetry, breaker } = observability;
  metrics.addCollector(() => {
    observability.slo.publish(performance.now());
    for (const pool of config.pools) {
      const engineVersion = telemetry.engineVersionOf(pool.id);
      const depth = sources.depth(pool.id);
      for (const priority of PRIORITIES) {
        metrics.set('queueDepth', { engine: pool.engine, engine_version: engineVersion, pool_id: pool.id, priority }, depth[priority]);
      }
      const reservedCtx = telemetry.runningContexts(pool.id).reduce((sum, ctx) => sum + ctx, 0);
      const capacityCtx = configuredSlots(pool) * (pool.ctx ?? POOL_DEFAULTS.ctx);
      metrics.set('kvCacheUsage', { engine: pool.engine, engine_version: engineVersion, pool_id: pool.id, replica_id: 'pool' }, Math.min(1, reservedCtx / Math.max(1, capacityCtx)));
      metrics.set('poolReplicasReady', { pool_id: pool.id }, sources.readyReplicas(pool.id));
      metrics.set('breakerOpen', { pool_id: pool.id }, breaker.isOpen(pool.id) ? 1 : 0);
    }
    for (const supervised of sources.supervision()) {
      metrics.set('supervisedProcessUp', { process: supervised.name }, supervised.state === 'running' ? 1 : 0);
      metrics.set('supervisedProcessRestarts', { process: supervised.name }, supervised.restarts);
    }
    for (const [tenant, usage] of sources.quotas.usage()) {
      metrics.set('tenantActiveJobs', { tenant }, usage.jobs);
      metrics.set('tenantReservedMemory', { tenant }, usage.memoryBytes);
    }
  });
}
