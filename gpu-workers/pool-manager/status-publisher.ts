import type { Client } from '@temporalio/client';
import type { Logger } from 'pino';
import {
  REPLICA_STATUS_SIGNAL,
  REPLICA_STATUS_WORKFLOW_TYPE,
  replicaStatusWorkflowId,
} from '../../core/replica-status';
import type { ReplicaStatus } from '../../core/replica-status';
import { WORKFLOW_TASK_QUEUE } from '../../core/task-queues';

/**
 * Sends each state change to the replica's status workflow with signalWithStart, so gateways on any
 * host can read it. Latest wins: while one signal is in flight only the newest status waits, and a
 * failure is logged, never thrown (health is not worth stalling the lifecycle for).
 */
export class ReplicaStatusPublisher {
  private pending: ReplicaStatus | undefined;
  private inFlight: Promise<void> | undefined;

  constructor(
    private readonly client: Client,
    private readonly logger: Logger,
  ) {}

  publish(status: ReplicaStatus): void {
    this.pending = status;
    this.inFlight ??= this.drain();
  }

  /** Resolves once every published status was sent (or failed). */
  async flush(): Promise<void> {
    while (this.inFlight !== undefined) await this.inFlight;
  }

  private async drain(): Promise<void> {
    try {
      while (this.pending !== undefined) {
        const status = this.pending;
        this.pending = undefined;
        try {
          await this.client.workflow.signalWithStart(REPLICA_STATUS_WORKFLOW_TYPE, {
            workflowId: replicaStatusWorkflowId(status.pool_id, status.replica_id),
            taskQueue: WORKFLOW_TASK_QUEUE,
            args: [null],
            signal: REPLICA_STATUS_SIGNAL,
            signalArgs: [status],
          });
        } catch (error) {
          this.logger.warn({ err: error, state: status.state }, 'replica status not published');
        }
      }
    } finally {
      this.inFlight = undefined;
    }
  }
}
