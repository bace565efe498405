import { Client } from '@temporalio/client';
import type { NativeConnection } from '@temporalio/worker';
import type { Logger } from 'pino';
import { startGateway, type RunningGateway } from '../api/gateway';
import type { OrchConfig } from '../core/config';
import type { SupervisedProcessStatus } from '../core/supervised-process';
import { connectWorker } from '../platform/temporal-connections';
import { startWorkflowWorker, type RunningWorkflowWorker } from '../workflows/workflow-worker';

export interface GatewayProcess {
  readonly gateway: RunningGateway;
  /** Settles when the workflow worker stops (never without one); before `stop` that means this process can no longer run tasks. */
  readonly workflowWorkerDone: Promise<void>;
  stop(): Promise<void>;
}

/**
 * A gateway and a workflow worker sharing one NativeConnection, so workflow starts are eager (the first
 * workflow task runs here, without a matching round trip). `npm start` runs one in its own process, or
 * `gateway.processes` of them as cluster workers on the shared port (cli/gateway-cluster.ts), each with
 * an internal listener of its own.
 */
export async function startGatewayProcess(options: {
  readonly config: OrchConfig;
  readonly configPath: string;
  readonly address: string;
  readonly internalToken: string;
  readonly logger: Logger;
  readonly sharedPort: boolean;
  /** False where workflow workers run in processes of their own (`workflow_worker.processes` > 0). */
  readonly withWorkflowWorker: boolean;
  readonly supervision?: () => readonly SupervisedProcessStatus[];
}): Promise<GatewayProcess> {
  const { config, logger } = options;
  const connection: NativeConnection = await connectWorker(options.address, logger);
  const client = new Client({ connection, namespace: config.temporal.namespace });
  let workflowWorker: RunningWorkflowWorker | undefined;
  try {
    if (options.withWorkflowWorker) {
      workflowWorker = await startWorkflowWorker({ connection, namespace: config.temporal.namespace, internalToken: options.internalToken, logger });
    }
    const gateway = await startGateway({
      config,
      configPath: options.configPath,
      client,
      logger,
      internalToken: options.internalToken,
      // Eager starts need a workflow worker on this connection.
      eagerWorkflowStart: workflowWorker !== undefined,
      supervision: options.supervision,
      ...(options.sharedPort ? { internalListen: { host: config.gateway.host } } : {}),
    });
    // ORCH-3031: SIGHUP re-reads the config file, as POST /v1/config/reload does; a refused change is logged.
    process.on('SIGHUP', () => {
      try {
        gateway.configReloader.reload();
      } catch (error) {
        logger.error({ err: error }, 'config reload on SIGHUP refused');
      }
    });
    const running = workflowWorker;
    return {
      gateway,
      workflowWorkerDone: running?.done ?? new Promise<void>(() => undefined),
      stop: async () => {
        await gateway.close();
        await running?.stop();
        await connection.close();
      },
    };
  } catch (error) {
    await workflowWorker?.stop();
    await connection.close();
    throw error;
  }
}
