import type { Client } from '@temporalio/client';
import type { Logger } from 'pino';
import type { PoolConfig } from '../core/config';
import { REPLICA_STATUS_QUERY, replicaId, replicaStatusWorkflowId } from '../core/replica-status';
import type { ReplicaStatus } from '../core/replica-status';
import { BackgroundRefresh } from './background-refresh';

/** A status query is answered by a workflow worker; a refresh must not hang when none runs. */
const STATUS_QUERY_TIMEOUT_MS = 2_000;

export interface ReplicaDirectoryOptions {
  readonly client: Client;
  readonly pools: readonly PoolConfig[];
  readonly refreshMs: number;
  readonly logger: Logger;
  /** Replicas found polling a pool's queue beyond the configured ones (extra hosts, tests). */
  readonly pollingReplicaIds?: ((poolId: string) => readonly string[]) | undefined;
}

/**
 * The gateway's view of every replica's status record (design §4: replicas publish each state change,
 * and their slot load at most once a second, to their status workflow). Refreshed in the background so
 * placement, replica sets and metrics read memory, never Temporal, on a request's path. A replica whose
 * record cannot be read keeps its last known status; one never seen is absent.
 */
export class ReplicaDirectory {
  private readonly statuses = new Map<string, Map<string, ReplicaStatus>>();
  private readonly loop: BackgroundRefresh;

  constructor(private readonly options: ReplicaDirectoryOptions) {
    this.loop = new BackgroundRefresh(options.refreshMs, () => this.readAll());
  }

  start(): void {
    this.loop.start();
  }

  stop(): void {
    this.loop.stop();
  }

  /** The last known status of each replica of the pool, in replica-id order. */
  replicas(poolId: string): readonly ReplicaStatus[] {
    const byId = this.statuses.get(poolId);
    if (!byId) return [];
    return [...byId.values()].sort((left, right) => left.replica_id.localeCompare(right.replica_id));
  }

  replica(poolId: string, replica: string): ReplicaStatus | undefined {
    return this.statuses.get(poolId)?.get(replica);
  }

  /** Reads every record now; concurrent callers share one refresh. */
  refresh(): Promise<void> {
    return this.loop.refresh();
  }

  private async readAll(): Promise<void> {
    await Promise.all(this.options.pools.map((pool) => this.readPool(pool)));
  }

  private async readPool(pool: PoolConfig): Promise<void> {
    const configured = Array.from({ length: pool.replicas }, (_unused, index) => replicaId(pool.id, index));
    const ids = [...new Set([...configured, ...(this.options.pollingReplicaIds?.(pool.id) ?? [])])];
    const records = await Promise.all(ids.map((replica) => this.query(pool.id, replica)));
    const byId = this.statuses.get(pool.id) ?? new Map<string, ReplicaStatus>();
    for (const record of records) if (record) byId.set(record.replica_id, record);
    this.statuses.set(pool.id, byId);
  }

  private query(poolId: string, replica: string): Promise<ReplicaStatus | undefined> {
    return queryReplicaStatus(this.options.client, poolId, replica);
  }
}

/** One replica's status record, or undefined when it cannot be read (never started, or no workflow worker). */
export async function queryReplicaStatus(client: Client, poolId: string, replica: string): Promise<ReplicaStatus | undefined> {
  try {
    const status = await client.withDeadline(Date.now() + STATUS_QUERY_TIMEOUT_MS, () =>
      client.workflow.getHandle(replicaStatusWorkflowId(poolId, replica)).query<ReplicaStatus | null>(REPLICA_STATUS_QUERY),
    );
    return status ?? undefined;
  } catch {
    // Never started (the replica has not run yet) or no workflow worker to answer: unknown.
    return undefined;
  }
}
