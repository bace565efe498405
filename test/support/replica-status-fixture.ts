import { replicaSetKey } from '../../core/replica-set';
import type { ReplicaStatus } from '../../core/replica-status';

/**
 * A Ready mock replica's status record for unit tests; the replica-set key follows the fields
 * unless `overrides` sets one.
 */
export function replicaStatusFixture(replicaId: string, overrides: Partial<ReplicaStatus> = {}): ReplicaStatus {
  const base = {
    version: 1 as const,
    pool_id: 'p',
    replica_id: replicaId,
    host: 'h',
    state: 'ready' as const,
    live: true,
    ready: true,
    draining: false,
    engine_version: 'b1',
    model_digest: null,
    last_error: null,
    restarts: 0,
    breaker_open: false,
    next_attempt_at: null,
    cpu_inference_override: false,
    mock_engine: true,
    engine: 'llamacpp',
    model_ref: 'm',
    quant: null,
    ctx: 2048,
    sampler_profile_version: 'v1',
    slots_total: 2,
    slots_busy: 0,
    updated_at: '2026-11-24T00:00:00.000Z',
    ...overrides,
  };
  const key = base.engine_version === null ? null : replicaSetKey({ ...base, engine_version: base.engine_version });
  return { ...base, replica_set_key: overrides.replica_set_key !== undefined ? overrides.replica_set_key : key };
}
