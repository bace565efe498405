/** The session KV eviction workflow (DELETE /v1/sessions/:id, ORCH-2005): type, input, result. */
export const SESSION_KV_EVICTION_WORKFLOW_TYPE = 'sessionKvEvictionWorkflow';

export interface SessionKvEvictionInput {
  readonly tenant: string;
  readonly sessionId: string;
  /**
   * The replica whose lane runs the erase: the one that served the session last. Absent when no turn
   * ended well: the workflow then only records the delete (gateways read it, api/sessions/session-lookup.ts).
   */
  readonly replicaId?: string | undefined;
}

export interface SessionKvEvictionResult {
  /** False when the replica no longer held the session's KV (evicted, restarted, or gone). */
  readonly erased: boolean;
  readonly slotId: number | null;
}

/** One eviction per delete; the suffix keeps repeated deletes of one session id apart. */
export function sessionKvEvictionWorkflowId(sessionId: string, suffix: string): string {
  return `session-evict-${sessionId}-${suffix}`;
}
