import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

/**
 * Search attributes every task workflow carries, so an operator finds any job in the Web UI
 * (e.g. `TaskState="running" AND Pool="mock"`). The dev server registers them at start; an existing
 * cluster gets them from `npm run provision -- --register-search-attributes`.
 */
export const SearchAttr = {
  taskId: defineSearchAttributeKey('TaskId', SearchAttributeType.KEYWORD),
  pool: defineSearchAttributeKey('Pool', SearchAttributeType.KEYWORD),
  priority: defineSearchAttributeKey('Priority', SearchAttributeType.KEYWORD),
  clientId: defineSearchAttributeKey('ClientId', SearchAttributeType.KEYWORD),
  taskState: defineSearchAttributeKey('TaskState', SearchAttributeType.KEYWORD),
  engine: defineSearchAttributeKey('Engine', SearchAttributeType.KEYWORD),
  model: defineSearchAttributeKey('Model', SearchAttributeType.KEYWORD),
  replica: defineSearchAttributeKey('Replica', SearchAttributeType.KEYWORD),
  /** The task's session: a gateway that does not know a session finds its turns by it (api/sessions/). */
  sessionId: defineSearchAttributeKey('SessionId', SearchAttributeType.KEYWORD),
} as const;

export const ALL_SEARCH_ATTRIBUTES = Object.values(SearchAttr);

/**
 * `admitted` until the task ends. There is no `running` state on purpose: marking it would cost every task
 * a signal, a workflow task and a visibility write; the Web UI shows a running task's pending activity
 * (attempt, worker identity) instead.
 */
export const TASK_STATES = ['admitted', 'completed', 'cancelled', 'failed'] as const;
export type TaskState = (typeof TASK_STATES)[number];
