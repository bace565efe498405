import type { Client } from '@temporalio/client';
import type { Logger } from 'pino';
import { ReplicaStateMachine } from '../gpu-workers/pool-manager/replica-state';
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
 * is refused before any queue (ORCH-3018). The record is made by the replicas' own state machine.
 */
export async function announceParkedReplica(client: Client, pool: ParkedPool, logger: Logger): Promise<void> {
  const machine = new ReplicaStateMachine({
    poolId: pool.poolId,
    replicaId: `${pool.poolId}-r0`,
    host: 'parked',
    mockEngine: true,
    engine: 'llamacpp',
    modelRef: pool.model,
    quant: null,
    ctx: pool.ctx,
    samplerProfileVersion: 'v1',
  });
  machine.transition('loading');
  machine.transition('ready', { engineVersion: 'parked', slotsTotal: pool.slots });
  machine.setSlotsBusy(pool.slots);
  const publisher = new ReplicaStatusPublisher(client, logger);
  publisher.publish(machine.status);
  await publisher.flush();
}
