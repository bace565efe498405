import { Worker } from '@temporalio/worker';
import type { NativeConnection } from '@temporalio/worker';
import type { EngineActivities } from '../../activities/engine-activity';
import { replicaLaneTaskQueue } from '../../core/task-queues';
import type { SlotAllocator } from '../slot-allocator';
import { LaneSlotGate } from './engine-slot-gate';

export interface LaneWorkerOptions {
  readonly replicaId: string;
  readonly namespace: string;
  readonly connection: NativeConnection;
  readonly identity: string;
  /** The same activities (and so the same SlotAllocator) as the replica's pool-queue worker. */
  readonly activities: EngineActivities;
  /** The engine's slots, shared with the pool-queue worker: the lane polls only while one is free. */
  readonly slots: SlotAllocator;
  readonly shutdownGraceTime: string;
}

/**
 * The replica's own lane (placement ADR): one activity slot beside the pool-queue worker's N, granted
 * only while the engine has a free slot (LaneSlotGate). A Temporal worker reserves a slot before it
 * polls, so the lane cannot borrow the pool worker's slots; the engine may therefore be asked for at
 * most N + 1 requests at once, and llama-server defers the extra one until a slot frees.
 */
export function createLaneWorker(options: LaneWorkerOptions): Promise<Worker> {
  return Worker.create({
    connection: options.connection,
    namespace: options.namespace,
    taskQueue: replicaLaneTaskQueue(options.replicaId),
    identity: `${options.identity}/lane`,
    activities: options.activities,
    tuner: {
      activityTaskSlotSupplier: new LaneSlotGate(options.slots),
      // The lane runs no workflows, local activities or Nexus tasks; the SDK still wants a supplier for each.
      workflowTaskSlotSupplier: { type: 'fixed-size', numSlots: 1 },
      localActivityTaskSlotSupplier: { type: 'fixed-size', numSlots: 1 },
      nexusTaskSlotSupplier: { type: 'fixed-size', numSlots: 1 },
    },
    maxEagerActivityReservationsPerWorkflowTask: 0,
    shutdownGraceTime: options.shutdownGraceTime,
  });
}
