import type { Client } from '@temporalio/client';
import type { Logger } from 'pino';
import type { PoolConfig } from '../core/config';
import { initialPoolState, POOL_STATE_QUERY, poolStateWorkflowId } from '../core/pool-state';
import type { PoolState } from '../core/pool-state';
import { BackgroundRefresh } from './background-refresh';

const QUERY_TIMEOUT_MS = 2_000;

/**
 * The gateway's view of every pool's desired state (core/pool-state.ts), refreshed in the background like
 * the replica directory, so admission and model routing read memory on a request's path. A pool never
 * operated on has no record and serves its configured model. A record that cannot be read keeps the last
 * known state: a gateway that loses Temporal keeps refusing a drained pool rather than reopen it.
 */
export class PoolStateDirectory {
  private readonly states = new Map<string, PoolState>();
  private readonly loop: BackgroundRefresh;

  constructor(
    private readonly client: Client,
    private readonly pools: readonly PoolConfig[],
    refreshMs: number,
    private readonly logger: Logger,
  ) {
    this.loop = new BackgroundRefresh(refreshMs, async () => {
      await Promise.all(this.pools.map((pool) => this.read(pool.id)));
    });
  }

  start(): void {
    this.loop.start();
  }

  stop(): void {
    this.loop.stop();
  }

  state(poolId: string): PoolState {
    return this.states.get(poolId) ?? initialPoolState(poolId, new Date(0).toISOString());
  }

  /** The model the pool serves now: a reload's switch, else the config's. */
  modelOf(pool: PoolConfig): string {
    return this.states.get(pool.id)?.model_ref ?? pool.model;
  }

  /** This gateway just changed the record: take it now rather than at the next refresh. */
  remember(state: PoolState): void {
    this.states.set(state.pool_id, state);
  }

  refresh(): Promise<void> {
    return this.loop.refresh();
  }

  private async read(poolId: string): Promise<void> {
    try {
      const state = await this.client.withDeadline(Date.now() + QUERY_TIMEOUT_MS, () =>
        this.client.workflow.getHandle(poolStateWorkflowId(poolId)).query<PoolState>(POOL_STATE_QUERY),
      );
      this.states.set(poolId, state);
    } catch (error) {
      if ((error as { name?: unknown }).name === 'WorkflowNotFoundError') return;
      this.logger.debug({ err: error, pool_id: poolId }, 'pool state not refreshed; keeping the last known');
    }
  }
}
