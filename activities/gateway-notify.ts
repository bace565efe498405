import { request, type Dispatcher } from 'undici';
import type { TerminalReport } from '../core/task-workflow-contract';
import { internalAuthHeaders } from './internal-auth';

export interface GatewayNotifyDependencies {
  readonly internalToken: string;
  readonly dispatcher: Dispatcher;
}

/** Runs on the workflow worker: tells the gateway holding a task's stream how the task ended. */
export function createGatewayNotifyActivities(dependencies: GatewayNotifyDependencies) {
  return {
    async reportTerminal(report: TerminalReport): Promise<void> {
      const url = `${report.streamSinkUrl}/internal/v1/tasks/${encodeURIComponent(report.taskId)}/terminal`;
      const response = await request(url, {
        method: 'POST',
        dispatcher: dependencies.dispatcher,
        headers: { 'content-type': 'application/json', ...internalAuthHeaders(dependencies.internalToken) },
        body: JSON.stringify(report.part),
      });
      await response.body.dump();
      // 404: that gateway no longer holds the stream (restarted); readers fall back to the workflow result.
      if (response.statusCode !== 200 && response.statusCode !== 404) {
        throw new Error(`gateway answered ${response.statusCode}`);
      }
    },
  };
}

export type GatewayNotifyActivities = ReturnType<typeof createGatewayNotifyActivities>;
