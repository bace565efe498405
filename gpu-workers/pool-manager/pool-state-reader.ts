import { setTimeout as sleep } from 'node:timers/promises';
import type { Client } from '@temporalio/client';
import type { Logger } from 'pino';
import { POOL_STATE_QUERY, poolStateWorkflowId } from '../../core/pool-state';
import type { PoolState } from '../../core/pool-state';

const QUERY_TIMEOUT_MS = 2_000;
const ATTEMPTS = 10;
const RETRY_EVERY_MS = 1_000;

/**
 * Reads the pool's desired state when a replica starts, so a replica (re)started while the pool is drained
 * comes up drained. No record means the pool was never operated on: serving. A record that cannot be read
 * (no workflow worker yet) is retried for ~10 s; then the replica serves and says so loudly — it cannot
 * take a task from the queue without a workflow worker anyway, and the next drain reaches it.
 */
export async function readPoolState(client: Client, poolId: string, logger: Logger): Promise<PoolState | null> {
  const handle = client.workflow.getHandle(poolStateWorkflowId(poolId));
  for (let attempt = 1; attempt <= ATTEMPTS; attempt += 1) {
    try {
      return await client.withDeadline(Date.now() + QUERY_TIMEOUT_MS, () => handle.query<PoolState>(POOL_STATE_QUERY));
    } catch (error) {
      // Matched by name: instanceof fails across Jest realms.
      if ((error as { name?: unknown }).name === 'WorkflowNotFoundError') return null;
      if (attempt === ATTEMPTS) {
        logger.error({ err: error }, 'pool state unreadable; the replica starts as if the pool were serving');
        return null;
      }
      await sleep(RETRY_EVERY_MS);
    }
  }
  return null;
}
