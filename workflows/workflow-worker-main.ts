import { loadConfigFile } from '../core/config-file';
import { configPathFromArgs } from '../platform/config-path';
import { internalTokenFromEnv } from '../platform/internal-token';
import { createLogger } from '../platform/logger';
import { onShutdownSignal } from '../platform/shutdown';
import { connectWorker, requireTemporalAddress } from '../platform/temporal-connections';
import { startWorkflowWorker } from './workflow-worker';
import { WORKFLOW_WORKER_POLLING_EVENT } from './workflow-worker-events';
import { exitWithParent } from '../platform/parent-watch';

/**
 * Entry point for a workflow worker of its own: on another host (`npm run workflow-worker -- --config
 * path`), or one of `npm start`'s when `workflow_worker.processes` > 0.
 */
async function main(): Promise<void> {
  const logger = createLogger('workflow-worker');
  const { config } = loadConfigFile(configPathFromArgs(process.argv.slice(2)));
  const connection = await connectWorker(requireTemporalAddress(config), logger);
  const running = await startWorkflowWorker({
    connection,
    namespace: config.temporal.namespace,
    internalToken: internalTokenFromEnv({ mintIfMissing: false }),
    logger,
  });
  let stopping = false;
  const stop = async (): Promise<void> => {
    stopping = true;
    await running.stop();
    await connection.close();
  };
  onShutdownSignal(logger, stop);
  // A worker that stops on its own cannot run tasks: exit, and a supervisor starts it afresh.
  void running.done.finally(() => {
    if (stopping) return;
    logger.error('the workflow worker stopped; exiting so it is started afresh');
    process.exit(1);
  });
  // Under `npm start`, a parent that died (even by SIGKILL) takes this worker with it.
  if (process.env['ORCH_EXIT_WITH_PARENT'] === '1') exitWithParent(logger, stop);
  process.send?.({ event: WORKFLOW_WORKER_POLLING_EVENT });
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
