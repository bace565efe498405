import { defineQuery, defineUpdate } from '@temporalio/workflow';
import type { TaskStatus } from '../core/task-workflow-contract';

/** Cancels the task; returns once the workflow has recorded it (queued tasks then never dispatch). */
export const cancelTaskUpdate = defineUpdate<TaskStatus, [{ reason: string }]>('cancelTask');
export const taskStatusQuery = defineQuery<TaskStatus>('taskStatus');
