import { Worker } from '@temporalio/worker';
import type { NativeConnection } from '@temporalio/worker';
import type { EngineActivities } from '../../activities/engine-activity';
import { replicaLaneTaskQueue } from '../../core/task-queues';

export interface LaneWorkerOptions {
  readonly replicaId: string;
  readonly namespace: string;
  readonly connection: NativeConnection;
  readonly identity: string;
  /** The same activities (and so the same SlotAllocator) as the replica's pool-queue worker. */
  readonly activities: EngineActivities;
  readonly shutdownGraceTime: string;
}

/**
 * The replica's own lane (placement ADR): one activity slot beside the pool-queue worker's N. A Temporal
 * worker reserves a slot before it polls, so the lane cannot borrow the pool worker's slots; the engine
 * may therefore be asked for at most N + 1 requests at once, and llama-server defers the extra one
 * until a slot frees (bounded, and only while placed tasks arrive).
 */
export function createLaneWorker(options: LaneWorkerOptions): Promise<Worker> {
  return Worker.create({
    connection: options.connection,
    namespace: options.namespace,
    taskQueue: replicaLaneTaskQueue(options.replicaId),
    identity: `${options.identity}/lane`,
    activities: options.activities,
    maxConcurrentActivityTaskExecutions: 1,
    maxEagerActivityReservationsPerWorkflowTask: 0,
    shutdownGraceTime: options.shutdownGraceTime,
  });
}
