import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { Worker } from '@temporalio/worker';
import type { NativeConnection } from '@temporalio/worker';
import type { Logger } from 'pino';
import type { ReplicaControlActivities, ReplicaControlResult } from '../../core/pool-state';
import { replicaControlTaskQueue } from '../../core/task-queues';
import { asReplicaFailure } from './replica-failure';
import type { ReplicaStateMachine } from './replica-state';
import type { ReplicaSupervisor } from './replica-supervisor';

/** Control activities wait on the replica; they heartbeat so a dead pool worker is noticed (and retried on its next process). */
const HEARTBEAT_EVERY_MS = 2_000;

export interface ReplicaControlOptions {
  readonly replicaId: string;
  readonly namespace: string;
  readonly connection: NativeConnection;
  readonly identity: string;
  readonly supervisor: Pick<ReplicaSupervisor, 'drain' | 'resume' | 'reload' | 'check'>;
  readonly machine: Pick<ReplicaStateMachine, 'status'>;
  readonly logger: Logger;
}

/** Heartbeats while `work` runs, so the activity's heartbeat timeout only fires if this process is gone. */
async function heartbeating<T>(work: Promise<T>): Promise<T> {
  const context = Context.current();
  const timer = setInterval(() => context.heartbeat(), HEARTBEAT_EVERY_MS);
  try {
    return await work;
  } finally {
    clearInterval(timer);
  }
}

/** The activities operations workflows run on this replica (core/pool-state.ts ReplicaControlActivities). */
export function createReplicaControlActivities(options: Pick<ReplicaControlOptions, 'replicaId' | 'supervisor' | 'machine' | 'logger'>): ReplicaControlActivities {
  const { supervisor, machine, logger, replicaId } = options;
  const result = (extra: Partial<ReplicaControlResult> = {}): ReplicaControlResult => ({
    replicaId,
    state: machine.status.state,
    modelRef: machine.status.model_ref,
    ...extra,
  });
  return {
    async drainReplica({ deadlineMs }) {
      logger.info({ deadline_ms: deadlineMs }, 'drain requested');
      const { aborted } = await heartbeating(supervisor.drain(deadlineMs));
      return result({ aborted });
    },
    async resumeReplica() {
      logger.info('resume requested');
      await heartbeating(supervisor.resume());
      return result();
    },
    async reloadReplica({ modelRef }) {
      logger.info({ model_ref: modelRef }, 'reload requested');
      try {
        await heartbeating(supervisor.reload(modelRef));
      } catch (error) {
        // Typed and final: the same model fails the same checks again; the workflow rolls back instead.
        const failure = asReplicaFailure(error, 'config_mismatch');
        throw ApplicationFailure.create({ type: failure.code, message: `${failure.kind}: ${failure.message}`, nonRetryable: true });
      }
      return result();
    },
    async checkReplica({ modelRef }) {
      try {
        await heartbeating(supervisor.check(modelRef));
      } catch (error) {
        // The canary failed its check: the workflow rolls it back rather than check again.
        const failure = asReplicaFailure(error, 'self_test_failed');
        throw ApplicationFailure.create({ type: failure.code, message: `${failure.kind}: ${failure.message}`, nonRetryable: true });
      }
      return result();
    },
  };
}

/**
 * The replica's control Worker (design §5): serves its own control queue for the whole life of the
 * process — not only while Ready — so a drain or resume reaches a replica that is loading or drained.
 */
export async function startReplicaControl(options: ReplicaControlOptions): Promise<{ stop(): Promise<void> }> {
  const worker = await Worker.create({
    connection: options.connection,
    namespace: options.namespace,
    taskQueue: replicaControlTaskQueue(options.replicaId),
    identity: options.identity,
    activities: createReplicaControlActivities(options),
    maxConcurrentActivityTaskExecutions: 4,
    // A stopping replica's pending drain gets the heartbeat timeout and retries on the next process.
    shutdownGraceTime: '1s',
  });
  const running = worker.run();
  return {
    stop: async () => {
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await running;
    },
  };
}
