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
  private loadTimer: NodeJS.Timeout | undefined;
  private lastLoadPublishedAt = 0;

  constructor(
    private readonly client: Client,
    private readonly logger: Logger,
    /** Load-only changes go out at most this often: one signal per task would cost Temporal more than the task. */
    private readonly loadIntervalMs = 1_000,
  ) {}

  publish(status: ReplicaStatus): void {
    clearTimeout(this.loadTimer);
    this.loadTimer = undefined;
    this.pending = status;
    this.inFlight ??= this.drain();
  }

  /** A slot-load change: published throttled, trailing, so the last value always goes out. */
  publishLoad(status: ReplicaStatus): void {
    this.pending = status;
    if (this.loadTimer !== undefined || this.inFlight !== undefined) return;
    const wait = Math.max(0, this.lastLoadPublishedAt + this.loadIntervalMs - Date.now());
    this.loadTimer = setTimeout(() => {
      this.loadTimer = undefined;
      this.lastLoadPublishedAt = Date.now();
      if (this.pending !== undefined) this.inFlight ??= this.drain();
    }, wait);
    this.loadTimer.unref();
  }

  /** Resolves once every published status was sent (or failed). */
  async flush(): Promise<void> {
    if (this.loadTimer !== undefined) {
      clearTimeout(this.loadTimer);
      this.loadTimer = undefined;
      if (this.pending !== undefined) this.inFlight ??= this.drain();
    }
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
