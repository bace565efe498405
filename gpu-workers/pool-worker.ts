import { hostname } from 'node:os';
import { Worker, type NativeConnection } from '@temporalio/worker';
import type { Logger } from 'pino';
import { Agent } from 'undici';
import { createEngineActivities } from '../activities/engine-activity';
import type { PoolConfig } from '../core/config';
import { formatReplicaIdentity } from '../core/ids';
import { poolTaskQueue } from '../core/task-queues';
import { startEngineRuntime } from './engine-runtime';
import { SlotAllocator } from './slot-allocator';
import type { EngineAdapterV1 } from './engines/engine-adapter';

export interface PoolWorkerOptions {
  readonly pool: PoolConfig;
  readonly replicaIndex: number;
  readonly namespace: string;
  readonly connection: NativeConnection;
  readonly internalToken: string;
  readonly logger: Logger;
}

export interface RunningPoolWorker {
  readonly replicaId: string;
  /** The replica's engine, for health checks and tests (slot state). */
  readonly engine: EngineAdapterV1;
  readonly engineVersion: string;
  readonly mockEngine: boolean;
  readonly done: Promise<void>;
  stop(): Promise<void>;
}

/**
 * One pool replica (design §4): brings its engine up, then polls the pool's task queue with as many
 * activity slots as the engine has, so the backlog stays in Temporal where priority and fairness apply.
 */
export async function startPoolWorker(options: PoolWorkerOptions): Promise<RunningPoolWorker> {
  const { pool } = options;
  const replicaId = `${pool.id}-r${options.replicaIndex}`;
  const logger = options.logger.child({ pool_id: pool.id, replica_id: replicaId, engine: pool.engine });
  const engine = await startEngineRuntime(pool, logger);
  const dispatcher = new Agent({ keepAliveTimeout: 30_000, connections: Math.max(4, engine.properties.totalSlots * 2) });
  const replica = { poolId: pool.id, replicaId, engineVersion: engine.properties.engineVersion, mockEngine: engine.mockEngine };
  const worker = await Worker.create({
    connection: options.connection,
    namespace: options.namespace,
    taskQueue: poolTaskQueue(pool.id),
    identity: formatReplicaIdentity(replica),
    activities: createEngineActivities({
      adapter: engine.adapter,
      replica,
      internalToken: options.internalToken,
      dispatcher,
      slots: new SlotAllocator(engine.properties.totalSlots),
      logger,
    }),
    maxConcurrentActivityTaskExecutions: engine.properties.totalSlots,
    // No eager reservations: a slot is only taken by polling, after Temporal applied priority and fairness.
    maxEagerActivityReservationsPerWorkflowTask: 0,
    shutdownGraceTime: '10s',
  });
  const done = worker.run().finally(async () => {
    await dispatcher.close();
    await engine.stop();
  });
  logger.info(
    { engine_version: replica.engineVersion, slots: engine.properties.totalSlots, mock_engine: engine.mockEngine, host: hostname() },
    'pool replica ready and polling',
  );
  return {
    replicaId,
    engine: engine.adapter,
    engineVersion: replica.engineVersion,
    mockEngine: engine.mockEngine,
    done,
    stop: async () => {
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await done;
    },
  };
}
