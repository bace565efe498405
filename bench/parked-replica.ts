import type { Client } from '@temporalio/client';
import type { Logger } from 'pino';
import type { ReplicaStatus } from '../core/replica-status';
import { replicaSetKey } from '../core/replica-set';
import { ReplicaStatusPublisher } from '../gpu-workers/pool-manager/status-publisher';

export interface ParkedPool {
  readonly poolId: string;
  readonly model: string;
  readonly ctx: number;
  readonly slots: number;
}

/**
 * Announces a Ready replica r0 for a pool that no replica polls ("parked", as if every slot were busy), so
 * admission takes its tasks and they wait in the queue: what a benchmark of queue bounds, 429s and queued
 * memory, or a test that fills a queue before any replica polls, needs. A pool with no Ready replica at all
 * is refused before any queue (ORCH-3018).
 */
export async function announceParkedReplica(client: Client, pool: ParkedPool, logger: Logger): Promise<void> {
  const fields = { engine: 'llamacpp', model_ref: pool.model, quant: null, ctx: pool.ctx, engine_version: 'parked', sampler_profile_version: 'v1' };
  const status: ReplicaStatus = {
    version: 1,
    pool_id: pool.poolId,
    replica_id: `${pool.poolId}-r0`,
    host: 'parked',
    state: 'ready',
    live: true,
    ready: true,
    draining: false,
    model_digest: null,
    last_error: null,
    restarts: 0,
    breaker_open: false,
    next_attempt_at: null,
    cpu_inference_override: false,
    mock_engine: true,
    ...fields,
    replica_set_key: replicaSetKey(fields),
    slots_total: pool.slots,
    slots_busy: pool.slots,
    fast_start_url: null,
    updated_at: new Date().toISOString(),
  };
  const publisher = new ReplicaStatusPublisher(client, logger);
  publisher.publish(status);
  await publisher.flush();
}
