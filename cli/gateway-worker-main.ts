import { loadConfigFile } from '../core/config-file';
import { configPathFromArgs } from '../platform/config-path';
import { internalTokenFromEnv } from '../platform/internal-token';
import { createLogger } from '../platform/logger';
import { exitWithParent } from '../platform/parent-watch';
import { onShutdownSignal } from '../platform/shutdown';
import { requireTemporalAddress } from '../platform/temporal-connections';
import { startGatewayProcess } from './gateway-process';
import type { SupervisionMessage } from './gateway-cluster';

/** One of `npm start`'s gateway processes in cluster mode (cli/gateway-cluster.ts); tells the primary once it listens. */
async function main(): Promise<void> {
  const logger = createLogger(`gateway-${process.env['ORCH_GATEWAY_PROCESS'] ?? '0'}`);
  const configPath = configPathFromArgs(process.argv.slice(2));
  const { config } = loadConfigFile(configPath);
  // The primary supervises; it sends the board whenever it changes (cli/gateway-cluster.ts).
  let supervised: SupervisionMessage['processes'] = [];
  process.on('message', (message: unknown) => {
    if ((message as Partial<SupervisionMessage>).event === 'supervision') supervised = (message as SupervisionMessage).processes;
  });
  const running = await startGatewayProcess({
    config,
    configPath,
    address: requireTemporalAddress(config),
    internalToken: internalTokenFromEnv({ mintIfMissing: false }),
    logger,
    sharedPort: true,
    withWorkflowWorker: config.workflow_worker.processes === 0,
    supervision: () => supervised,
  });
  process.send?.({ event: 'gateway-listening', url: running.gateway.url });
  let stopping = false;
  // Without its workflow worker this process admits tasks nothing runs: exit, and the primary forks a fresh one.
  void running.workflowWorkerDone.finally(() => {
    if (stopping) return;
    logger.error('the workflow worker stopped; exiting so this gateway process is started afresh');
    process.exit(1);
  });
  onShutdownSignal(logger, () => {
    stopping = true;
    return running.stop();
  });
  // A cluster worker of `npm start`: it ends with its primary, however that died.
  exitWithParent(logger, () => {
    stopping = true;
    return running.stop();
  });
}

main().catch((error: unknown) => {
  process.stderr.write(`gateway process failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
