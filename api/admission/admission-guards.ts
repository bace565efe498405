import type { PoolConfig } from '../../core/config';
import type { TaskRequest } from '../../core/task-request';
import type { PoolCircuitBreaker } from './circuit-breaker';
import type { TenantQuotas } from './tenant-quota';

/**
 * Checks admission runs just before a task takes its place in the ledger (one call from the admission
 * controller): the pool's SLO circuit breaker (ORCH-3040), then the tenant's quotas (ORCH-3036). Each
 * throws its typed rejection; the quota reservation is released when the task leaves the ledger.
 */
export class AdmissionGuards {
  constructor(
    private readonly breaker: PoolCircuitBreaker,
    private readonly quotas: TenantQuotas,
  ) {}

  beforeAdmit(pool: PoolConfig, request: TaskRequest, clientId: string): void {
    this.breaker.check(pool.id, request.engine);
    this.quotas.reserve(clientId, pool.id, request.task_id, request.ctx, request.engine);
  }
}
