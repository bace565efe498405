import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { ErrorCode } from '../core/errors';
import { replicaLaneTaskQueue } from '../core/task-queues';
import type { EngineRunInput, EngineRunOutcome } from '../core/task-workflow-contract';
import { kvSessionKey } from '../gpu-workers/kv-residency';
import { startGeneration, type GenerationDependencies } from './engine-generation';

export type { ReplicaDescription } from './engine-generation';

export type EngineActivityDependencies = GenerationDependencies;

/**
 * The engine activity owns the engine call (style rule 5): it runs one attempt (activities/engine-generation.ts)
 * and adds what only an activity has: heartbeats and Temporal's cancellation. (A fast-started attempt is
 * collected by the workflow's local activity instead: activities/fast-start-outcome.ts.)
 */
export function createEngineActivities(dependencies: EngineActivityDependencies) {
  const { adapter, replica } = dependencies;

  async function runEngineTask({ workflow, attemptOffset }: EngineRunInput): Promise<EngineRunOutcome> {
    const context = Context.current();
    const attempt = context.info.attempt + (attemptOffset ?? 0);
    const onLane = context.info.taskQueue === replicaLaneTaskQueue(replica.replicaId);
    // A poll reserved while a slot was free can bring a task after a fast start (or the lane) took that
    // slot. The task must not wait inside a full engine, outside priority and fairness, while another
    // replica may be free: a placed task falls back to the pool queue (the workflow does that on this code),
    // a pool-queue task goes back to it through the activity's retry.
    if (dependencies.slots.busySlots >= dependencies.slots.slotCount) {
      throw ApplicationFailure.create({
        type: ErrorCode.REPLICA_EXHAUSTED,
        message: onLane ? `replica ${replica.replicaId} has no free slot for a placed task` : `replica ${replica.replicaId} filled up before this task arrived; back to the pool queue`,
      });
    }
    const generation = startGeneration(dependencies, workflow, { attempt, attemptOffset: attemptOffset ?? 0 });
    const onTemporalCancel = (): void => generation.abort('temporal-cancel');
    context.cancellationSignal.addEventListener('abort', onTemporalCancel);
    if (context.cancellationSignal.aborted) onTemporalCancel();
    // No heartbeat at start: the timeout already runs from the activity's start, and a short task then
    // costs Temporal no heartbeat write at all. The SDK coalesces these to one per 0.8 × heartbeat_ms.
    const heartbeatTimer = setInterval(() => context.heartbeat({ tokensOut: generation.tokensOut }), Math.max(100, workflow.timeouts.heartbeatMs / 3));
    try {
      return await generation.done;
    } finally {
      clearInterval(heartbeatTimer);
      context.cancellationSignal.removeEventListener('abort', onTemporalCancel);
    }
  }

  /** DELETE /v1/sessions/:id (ORCH-2005): erases the session's slot; runs on the replica's lane. */
  async function evictSessionKv({ tenant, sessionId }: { tenant: string; sessionId: string }): Promise<{ erased: boolean; slotId: number | null }> {
    const resident = dependencies.kv?.forget(kvSessionKey(tenant, sessionId));
    if (resident === undefined) return { erased: false, slotId: null };
    // Residency is only tracked where the engine can pin slots; an engine without an erase just lets the KV age out.
    const erase = adapter.slotControl?.erase;
    if (!erase) return { erased: false, slotId: resident.slotId };
    await erase(resident.slotId);
    dependencies.logger.info({ session_id: sessionId, client_id: tenant, slot_id: resident.slotId, kv_bytes: resident.bytes }, 'session KV erased');
    return { erased: true, slotId: resident.slotId };
  }

  return { runEngineTask, evictSessionKv };
}

export type EngineActivities = ReturnType<typeof createEngineActivities>;
