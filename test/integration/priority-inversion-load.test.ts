import { temporal } from '@temporalio/proto';
import { request } from 'undici';
import { PRIORITY_KEY } from '../../core/engines';
import { taskWorkflowId } from '../../core/ids';
import { poolTaskQueue } from '../../core/task-queues';
import { waitFor } from '../support/sse-client';
import { startTestStack, taskRequest, type TestStack } from '../support/stack';

/**
 * ORCH-3051 at load (the audit's gap: only bench/priority-inversion.ts looked at priority under a flood, and it
 * asserts nothing). Two slots, a batch flood up to its class bound, then interactive tasks; asserted by the order
 * the replica dispatches in (its `task dispatched` log lines, in-process, in order), never by timing.
 */
const SLOTS = 2;
const BATCH_CLASS_CAPACITY = 198;
const INTERACTIVE_CLASS_CAPACITY = 32;
const INTERACTIVE_TASKS = 20;
/** Parallel submissions: a flood, not a queue of one client's calls. */
const SUBMITTERS = 8;

let stack: TestStack;
beforeAll(async () => {
  stack = await startTestStack({
    slots: SLOTS,
    ttftMs: 1,
    // Blockers run 1500 × 20 ms = 30 s unless cancelled; the flood's tasks are 2 tokens.
    interTokenMs: 20,
    wallMs: 120_000,
    queue: { capacity: 256, full_policy: 'reject' },
    priorities: [
      { name: 'interactive', queue_capacity: INTERACTIVE_CLASS_CAPACITY },
      { name: 'batch', queue_capacity: BATCH_CLASS_CAPACITY },
    ],
  });
});
afterAll(async () => {
  await stack.stop();
});

async function submit(overrides: Record<string, unknown>): Promise<{ taskId: string; status: number; body: Record<string, unknown> }> {
  // Each task its own new session: nothing is placed on a replica's lane, all of it goes through the pool queue.
  const body = taskRequest(stack, { ctx: 2_048, max_tokens: 2, deadline_ms: 120_000, ...overrides });
  const response = await request(`${stack.url}/v1/tasks`, { method: 'POST', headers: { ...stack.authHeaders, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { taskId: String(body['task_id']), status: response.statusCode, body: (await response.body.json()) as Record<string, unknown> };
}

/** Task ids in the order the replica dispatched them (first attempt of each), from its log lines. */
function dispatchOrder(): string[] {
  const seen = new Set<string>();
  for (const line of stack.logs.lines()) {
    if (line['msg'] === 'task dispatched' && typeof line['job_id'] === 'string') seen.add(line['job_id']);
  }
  return [...seen];
}

/** Temporal matching's own count of tasks waiting in the pool queue with a priority key. */
async function waitingInPoolQueue(priority: 'interactive' | 'batch'): Promise<number> {
  const response = await stack.client.workflowService.describeTaskQueue({
    namespace: 'default',
    taskQueue: { name: poolTaskQueue(stack.poolId), kind: temporal.api.enums.v1.TaskQueueKind.TASK_QUEUE_KIND_NORMAL },
    taskQueueType: temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
    reportStats: true,
  });
  return Number(response.statsByPriorityKey?.[PRIORITY_KEY[priority]]?.approximateBacklogCount ?? 0);
}

test('ORCH-3051 OC-CORE-1004 OC-CORE-1001: under a batch flood at its class bound, interactive tasks are all admitted and each starts before every batch task still queued when it was admitted (2 slots, ~200 batch, 20 interactive; by dispatch order)', async () => {
  // Two long batch tasks take both slots; until the test cancels them nothing else can start.
  const blockers = [await submit({ priority: 'batch', max_tokens: 1_500 }), await submit({ priority: 'batch', max_tokens: 1_500 })];
  expect(blockers.map((blocker) => blocker.status)).toEqual([202, 202]);
  await waitFor(() => blockers.every((blocker) => dispatchOrder().includes(blocker.taskId)), 20_000, 'both slots busy');

  // The batch flood, from parallel clients, until its class bound refuses it.
  const batch: string[] = [];
  const refusals: Record<string, unknown>[] = [];
  await Promise.all(
    Array.from({ length: SUBMITTERS }, async () => {
      while (refusals.length === 0 && batch.length < BATCH_CLASS_CAPACITY + 10) {
        const answer = await submit({ priority: 'batch' });
        if (answer.status === 202) batch.push(answer.taskId);
        else refusals.push({ status: answer.status, ...answer.body });
      }
    }),
  );
  expect(refusals[0]).toMatchObject({ status: 429, code: 'ADMISSION_REJECT', policy_label: 'reject' });
  expect(batch.length).toBeGreaterThanOrEqual(BATCH_CLASS_CAPACITY - SUBMITTERS);
  expect(batch.length).toBeLessThanOrEqual(BATCH_CLASS_CAPACITY);

  // Interactive tasks while the batch backlog holds its whole class bound: none refused (their class has its own).
  const interactive = await Promise.all(Array.from({ length: INTERACTIVE_TASKS }, () => submit({ priority: 'interactive' })));
  expect(interactive.map((answer) => answer.status)).toEqual(Array.from({ length: INTERACTIVE_TASKS }, () => 202));
  const interactiveIds = interactive.map((answer) => answer.taskId);

  // Admitted means in the pool queue: Temporal's matching holds every one of them (no slot could take any).
  await waitFor(async () => (await waitingInPoolQueue('interactive')) >= INTERACTIVE_TASKS, 30_000, 'the interactive tasks in the pool queue');
  const dispatchedBeforeRelease = dispatchOrder();
  expect(new Set(dispatchedBeforeRelease)).toEqual(new Set(blockers.map((blocker) => blocker.taskId)));
  const queuedBatch = new Set(batch);

  // Free the slots; everything drains.
  for (const blocker of blockers) {
    const cancelled = await request(`${stack.url}/v1/tasks/${blocker.taskId}/cancel`, { method: 'POST', headers: stack.authHeaders });
    expect(cancelled.statusCode).toBe(204);
    await cancelled.body.dump();
  }
  await Promise.all([...interactiveIds, ...batch].map((taskId) => stack.client.workflow.getHandle(taskWorkflowId(taskId)).result()));

  const released = dispatchOrder().slice(dispatchedBeforeRelease.length);
  expect(released).toHaveLength(INTERACTIVE_TASKS + batch.length);
  // Every interactive task started before any batch task that was still queued when it was admitted — all of them.
  const firstQueuedBatch = released.findIndex((taskId) => queuedBatch.has(taskId));
  const lastInteractive = Math.max(...interactiveIds.map((taskId) => released.indexOf(taskId)));
  expect({ firstQueuedBatch, lastInteractive }).toEqual({ firstQueuedBatch: INTERACTIVE_TASKS, lastInteractive: INTERACTIVE_TASKS - 1 });
  expect(new Set(released.slice(0, INTERACTIVE_TASKS))).toEqual(new Set(interactiveIds));
  expect(new Set(released.slice(INTERACTIVE_TASKS))).toEqual(queuedBatch);
}, 120_000);
