import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { DispatchNotice, TaskStatus } from '../core/task-workflow-contract';

/** Cancels the task; returns once the workflow has recorded it (queued tasks then never dispatch). */
export const cancelTaskUpdate = defineUpdate<TaskStatus, [{ reason: string }]>('cancelTask');
/** Sent by the engine activity when a replica picks the task up. */
export const taskDispatchedSignal = defineSignal<[DispatchNotice]>('taskDispatched');
export const taskStatusQuery = defineQuery<TaskStatus>('taskStatus');
