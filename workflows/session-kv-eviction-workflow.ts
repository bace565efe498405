import { ActivityFailure, log, proxyActivities, TimeoutFailure } from '@temporalio/workflow';
import type { SessionKvEvictionInput, SessionKvEvictionResult } from '../core/session-kv-eviction-contract';
import { replicaLaneTaskQueue } from '../core/task-queues';
import type { EngineActivities } from '../activities/engine-activity';

/** How long the replica's lane may take to pick the erase up; a replica not Ready does not poll it. */
const LANE_PICKUP_TIMEOUT = '30s';

/**
 * Erases a deleted session's KV on the replica that holds it (ORCH-2005), as a workflow so an operator
 * sees each eviction in the Web UI; it is also the durable record of the delete that other gateways read. Runs on the replica's lane, which only a Ready replica polls: a
 * replica that stopped or restarted holds no KV, so a lane nobody picks up means nothing to erase.
 */
export async function sessionKvEvictionWorkflow(input: SessionKvEvictionInput): Promise<SessionKvEvictionResult> {
  if (input.replicaId === undefined) return { erased: false, slotId: null };
  const lane = proxyActivities<EngineActivities>({
    taskQueue: replicaLaneTaskQueue(input.replicaId),
    scheduleToStartTimeout: LANE_PICKUP_TIMEOUT,
    startToCloseTimeout: '10s',
    retry: { maximumAttempts: 3, initialInterval: '200ms' },
  });
  try {
    return await lane.evictSessionKv({ tenant: input.tenant, sessionId: input.sessionId });
  } catch (error) {
    if (error instanceof ActivityFailure && error.cause instanceof TimeoutFailure) {
      log.info('replica lane not polled; nothing to erase', { replicaId: input.replicaId });
      return { erased: false, slotId: null };
    }
    throw error;
  }
}
