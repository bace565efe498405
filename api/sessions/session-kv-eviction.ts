import { randomUUID } from 'node:crypto';
import type { FastifyBaseLogger } from 'fastify';
import { SearchAttr } from '../../core/search-attributes';
import { SESSION_KV_EVICTION_WORKFLOW_TYPE, sessionKvEvictionWorkflowId, type SessionKvEvictionInput } from '../../core/session-kv-eviction-contract';
import { WORKFLOW_TASK_QUEUE } from '../../core/task-queues';
import type { GatewayContext } from '../gateway-context';

/**
 * Starts the session KV eviction workflow and returns without waiting for it: DELETE answers 204 once
 * the eviction is recorded in Temporal (durable), and the erase runs on the replica's lane.
 */
export async function startSessionKvEviction(context: Pick<GatewayContext, 'client'>, input: SessionKvEvictionInput, log: FastifyBaseLogger): Promise<void> {
  try {
    await context.client.workflow.start(SESSION_KV_EVICTION_WORKFLOW_TYPE, {
      workflowId: sessionKvEvictionWorkflowId(input.sessionId, randomUUID().slice(0, 8)),
      taskQueue: WORKFLOW_TASK_QUEUE,
      args: [input],
      typedSearchAttributes: [
        { key: SearchAttr.clientId, value: input.tenant },
        { key: SearchAttr.sessionId, value: input.sessionId },
      ],
    });
  } catch (error) {
    // The session is forgotten either way; its KV then goes when the slot is next needed (LRU).
    log.error({ err: error, session_id: input.sessionId, replica_id: input.replicaId }, 'session KV eviction not started');
  }
}
