import type { Client } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import type { Logger } from 'pino';
import { PRIORITY_KEY } from '../../core/engines';
import { poolTaskQueue } from '../../core/task-queues';
import { BackgroundRefresh } from '../background-refresh';

export interface BacklogView {
  readonly interactive: number;
  readonly batch: number;
  /** Pollers of the pool queue: the Ready replicas (design §4). */
  readonly readyReplicas: readonly string[];
}

/**
 * Temporal's own count of tasks waiting in each pool queue, by priority key, refreshed in the
 * background. Every gateway sees every gateway's tasks this way, so a queue bound holds across
 * gateways up to what is admitted during one refresh (see .specs/decisions/2026-11-24-bounded-queues.md).
 */
export class TemporalBacklog {
  private readonly views = new Map<string, BacklogView>();
  private readonly loop: BackgroundRefresh;

  constructor(
    private readonly client: Client,
    private readonly poolIds: readonly string[],
    refreshMs: number,
    private readonly logger: Logger,
  ) {
    this.loop = new BackgroundRefresh(refreshMs, () => this.readAll());
    this.loop.start();
  }

  view(poolId: string): BacklogView | undefined {
    return this.views.get(poolId);
  }

  refresh(): Promise<void> {
    return this.loop.refresh();
  }

  stop(): void {
    this.loop.stop();
  }

  private async readAll(): Promise<void> {
    try {
      await Promise.all(this.poolIds.map(async (poolId) => this.views.set(poolId, await this.describe(poolId))));
    } catch (error) {
      this.logger.warn({ err: error }, 'could not read pool backlogs from Temporal; admission uses local counts');
    }
  }

  private async describe(poolId: string): Promise<BacklogView> {
    const response = await this.client.workflowService.describeTaskQueue({
      namespace: this.client.options.namespace,
      taskQueue: { name: poolTaskQueue(poolId), kind: temporal.api.enums.v1.TaskQueueKind.TASK_QUEUE_KIND_NORMAL },
      taskQueueType: temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
      reportStats: true,
    });
    const byKey = response.statsByPriorityKey ?? {};
    const backlogOf = (key: number) => Number(byKey[key]?.approximateBacklogCount ?? 0);
    return {
      interactive: backlogOf(PRIORITY_KEY.interactive),
      batch: backlogOf(PRIORITY_KEY.batch),
      readyReplicas: (response.pollers ?? []).map((poller) => poller.identity ?? '').filter((identity) => identity.length > 0),
    };
  }
}
