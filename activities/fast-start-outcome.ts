import { Context } from '@temporalio/activity';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { request, type Dispatcher } from 'undici';
import { ErrorCode } from '../core/errors';
import type { EngineRunOutcome, TaskWorkflowInput } from '../core/task-workflow-contract';
import { OUTCOME_KEEPALIVE_MS, type FastStartOutcomeLine } from '../core/fast-start-wire';
import { internalAuthHeaders } from './internal-auth';

export interface FastStartOutcomeDependencies {
  readonly internalToken: string;
  readonly dispatcher: Dispatcher;
}

/** Several missed keepalives: the replica (or the path to it) is gone, not slow. */
const SILENCE_LIMIT_MS = 5 * OUTCOME_KEEPALIVE_MS;

/**
 * A local activity of the task workflow (ADR 2026-12-06): collects the outcome of the run a replica began
 * before the workflow existed, instead of dispatching a first attempt. Local, so a fast-started task costs
 * Temporal its start and one workflow task completion — no activity task to schedule, match and record.
 * A replica that dies (connection lost, or silent past its keepalives) fails the activity retryably: the
 * workflow then falls back to the pool queue, where another replica regenerates the task and the gateway
 * checks the prefix (design §6).
 */
export function createFastStartOutcomeActivities(dependencies: FastStartOutcomeDependencies) {
  return {
    async collectFastStartOutcome({ workflow }: { workflow: TaskWorkflowInput }): Promise<EngineRunOutcome> {
      const url = workflow.placement?.fastStartUrl;
      const taskId = workflow.request.task_id;
      if (url === undefined) throw ApplicationFailure.create({ type: ErrorCode.INTERNAL, message: 'no fast-start replica to collect from', nonRetryable: true });
      const context = Context.current();
      const abort = new AbortController();
      const onCancel = (): void => abort.abort();
      context.cancellationSignal.addEventListener('abort', onCancel);
      try {
        const response = await request(`${url}/internal/v1/fast-starts/${encodeURIComponent(taskId)}/outcome`, {
          method: 'GET',
          dispatcher: dependencies.dispatcher,
          headers: internalAuthHeaders(dependencies.internalToken),
          signal: abort.signal,
          headersTimeout: SILENCE_LIMIT_MS,
          bodyTimeout: SILENCE_LIMIT_MS,
        });
        if (response.statusCode !== 200) {
          await response.body.dump();
          throw replicaLost(`the replica holds no run for this task (HTTP ${response.statusCode})`);
        }
        const line = lastLine(await response.body.text());
        if ('outcome' in line) return line.outcome;
        throw ApplicationFailure.create({ type: line.failure.type, message: line.failure.message, nonRetryable: line.failure.nonRetryable });
      } catch (error) {
        if (context.cancellationSignal.aborted) {
          // The workflow cancelled the task: the replica stops decoding before the activity reports it.
          await withdraw(dependencies, url, taskId);
          throw new CancelledFailure('cancelled');
        }
        if (error instanceof ApplicationFailure) throw error;
        throw replicaLost(`the fast-started replica went away: ${error instanceof Error ? error.message : String(error)}`);
      } finally {
        context.cancellationSignal.removeEventListener('abort', onCancel);
      }
    },
  };
}

export type FastStartOutcomeActivities = ReturnType<typeof createFastStartOutcomeActivities>;

function replicaLost(message: string): ApplicationFailure {
  return ApplicationFailure.create({ type: ErrorCode.WORKER_RESET, message, nonRetryable: false });
}

function lastLine(body: string): FastStartOutcomeLine {
  const line = body.split('\n').filter((candidate) => candidate.trim().length > 0).at(-1);
  if (line === undefined) throw replicaLost('the replica closed the outcome without one');
  return JSON.parse(line) as FastStartOutcomeLine;
}

async function withdraw(dependencies: FastStartOutcomeDependencies, url: string, taskId: string): Promise<void> {
  try {
    const response = await request(`${url}/internal/v1/fast-starts/${encodeURIComponent(taskId)}`, {
      method: 'DELETE',
      dispatcher: dependencies.dispatcher,
      headers: internalAuthHeaders(dependencies.internalToken),
    });
    await response.body.dump();
  } catch {
    // The replica is gone: so is its run.
  }
}
