import { Worker, bundleWorkflowCode, type NativeConnection } from '@temporalio/worker';
import type { Logger } from 'pino';
import { Agent } from 'undici';
import { createFastStartOutcomeActivities } from '../activities/fast-start-outcome';
import { createGatewayNotifyActivities } from '../activities/gateway-notify';
import { WORKFLOW_TASK_QUEUE } from '../core/task-queues';

export interface WorkflowWorkerOptions {
  readonly connection: NativeConnection;
  readonly namespace: string;
  readonly internalToken: string;
  readonly logger: Logger;
  /** A pre-built bundle (tests build one per run); built from ./index otherwise. */
  readonly workflowBundleCode?: string | undefined;
}

export interface RunningWorkflowWorker {
  readonly worker: Worker;
  /** Resolves when the worker has stopped. */
  readonly done: Promise<void>;
  stop(): Promise<void>;
}

export function buildWorkflowBundle(): Promise<{ code: string }> {
  return bundleWorkflowCode({ workflowsPath: require.resolve('./index'), logger: quietBundlerLogger });
}

/** Runs the task workflows (and their gateway-notify local activity) on the shared workflow queue. */
export async function startWorkflowWorker(options: WorkflowWorkerOptions): Promise<RunningWorkflowWorker> {
  const dispatcher = new Agent({ keepAliveTimeout: 30_000, connections: 32 });
  const code = options.workflowBundleCode ?? (await buildWorkflowBundle()).code;
  const worker = await Worker.create({
    connection: options.connection,
    namespace: options.namespace,
    taskQueue: WORKFLOW_TASK_QUEUE,
    workflowBundle: { code },
    // Local activities of the task workflow: the terminal report to the gateway, and a fast start's outcome.
    activities: {
      ...createGatewayNotifyActivities({ internalToken: options.internalToken, dispatcher }),
      ...createFastStartOutcomeActivities({ internalToken: options.internalToken, dispatcher }),
    },
    maxConcurrentWorkflowTaskExecutions: 64,
    shutdownGraceTime: '5s',
  });
  const done = worker.run().finally(() => dispatcher.close());
  options.logger.info({ task_queue: WORKFLOW_TASK_QUEUE }, 'workflow worker running');
  return {
    worker,
    done,
    stop: async () => {
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await done;
    },
  };
}

const quietBundlerLogger = {
  log: () => undefined,
  trace: () => undefined,
  debug: () => undefined,
  info: () => undefined,
  warn: (message: string) => process.stderr.write(`[workflow bundle] ${message}\n`),
  error: (message: string) => process.stderr.write(`[workflow bundle] ${message}\n`),
};
