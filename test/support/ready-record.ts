import { announceParkedReplica } from '../../bench/parked-replica';
import { createLogger } from '../../platform/logger';
import { waitFor } from './sse-client';
import type { TestStack } from './stack';

/** bench/parked-replica.ts for a test stack, once its gateway has read the record. */
export async function announceReadyReplica(stack: TestStack, slots: number): Promise<void> {
  await announceParkedReplica(stack.client, { poolId: stack.poolId, model: stack.model, ctx: stack.config.pools[0]?.ctx ?? 2048, slots }, createLogger('test'));
  await stack.gateway.replicas.refresh();
  await waitFor(() => stack.gateway.replicas.replicas(stack.poolId).some((record) => record.ready), 5_000, 'the Ready record');
}
