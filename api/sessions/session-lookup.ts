import type { Client } from '@temporalio/client';
import { SearchAttr } from '../../core/search-attributes';
import { SESSION_KV_EVICTION_WORKFLOW_TYPE } from '../../core/session-kv-eviction-contract';
import { TASK_WORKFLOW_TYPE } from '../../core/task-workflow-contract';
import type { SessionInfo } from './session-registry';

/** Visibility is answered by the frontend alone; a session read must not hang on it. */
const LOOKUP_TIMEOUT_MS = 2_000;
/** Deletes and re-used session ids add workflows beyond a session's own turns; read a few sessions' worth. */
const MAX_READ_FACTOR = 4;

/**
 * A session this gateway does not know (another gateway admitted its turns, or this one restarted), read
 * from Temporal visibility: its turns are the tenant's task workflows with its SessionId started after its
 * last delete (a session KV eviction workflow), its lifetime runs from the first of them, and its replica
 * is the one the latest finished turn ran on. KV figures stay with the gateway that relayed the turns, so
 * they read as unknown here (0, not warm). Reads a bounded number of workflows.
 */
export async function lookupSession(
  client: Client,
  tenant: string,
  sessionId: string,
  limits: { readonly ttlMs: number; readonly maxTurns: number },
  now: number = Date.now(),
): Promise<SessionInfo | undefined> {
  const query = [
    `(WorkflowType = ${quoted(TASK_WORKFLOW_TYPE)} OR WorkflowType = ${quoted(SESSION_KV_EVICTION_WORKFLOW_TYPE)})`,
    `${SearchAttr.clientId.name} = ${quoted(tenant)}`,
    `${SearchAttr.sessionId.name} = ${quoted(sessionId)}`,
  ].join(' AND ');
  const turnStarts: { startMs: number; replicaId: string | undefined }[] = [];
  let deletedAtMs = Number.NEGATIVE_INFINITY;
  const readLimit = MAX_READ_FACTOR * (limits.maxTurns + 1);
  await client.withDeadline(now + LOOKUP_TIMEOUT_MS, async () => {
    let read = 0;
    for await (const execution of client.workflow.list({ query, pageSize: readLimit })) {
      const startMs = execution.startTime.getTime();
      if (execution.type === SESSION_KV_EVICTION_WORKFLOW_TYPE) deletedAtMs = Math.max(deletedAtMs, startMs);
      else turnStarts.push({ startMs, replicaId: execution.typedSearchAttributes.get(SearchAttr.replica) });
      read += 1;
      if (read >= readLimit) break;
    }
  });
  const turns = turnStarts.filter((turn) => turn.startMs > deletedAtMs).sort((left, right) => left.startMs - right.startMs);
  const first = turns[0];
  if (first === undefined) return undefined;
  const replicaId = turns.findLast((turn) => turn.replicaId !== undefined)?.replicaId;
  return {
    ttl_ms_remaining: Math.max(0, first.startMs + limits.ttlMs - now),
    turns: turns.length,
    kv_bytes: 0,
    kv_warmth: false,
    kv_migrated: false,
    replica_id: replicaId ?? null,
  };
}

/** A visibility-query string literal; tenants and session ids are already restricted, this keeps it so. */
function quoted(value: string): string {
  return `"${value.replace(/["\\]/g, '')}"`;
}
