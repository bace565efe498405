import type { Client } from '@temporalio/client';
import { taskWorkflowId } from '../../core/ids';

type Phase = 'activityTaskScheduledEventAttributes' | 'activityTaskStartedEventAttributes';

/** When each task's engine activity reached `phase`, from its workflow history. */
async function phaseTimes(client: Client, taskIds: readonly string[], phase: Phase): Promise<Map<string, number>> {
  const times = new Map<string, number>();
  for (const taskId of taskIds) {
    const history = await client.workflow.getHandle(taskWorkflowId(taskId)).fetchHistory();
    const event = (history.events ?? []).find((candidate) => candidate[phase]);
    if (event?.eventTime) times.set(taskId, Number(event.eventTime.seconds ?? 0) * 1_000_000 + Math.floor((event.eventTime.nanos ?? 0) / 1e3));
  }
  return times;
}

async function orderBy(client: Client, taskIds: readonly string[], phase: Phase): Promise<string[]> {
  const times = await phaseTimes(client, taskIds, phase);
  return [...times.entries()].sort((a, b) => a[1] - b[1]).map(([taskId]) => taskId);
}

/** Task ids in the order their engine activities started (exact on a one-slot pool). */
export function dispatchOrder(client: Client, taskIds: readonly string[]): Promise<string[]> {
  return orderBy(client, taskIds, 'activityTaskStartedEventAttributes');
}
