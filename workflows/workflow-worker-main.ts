import { loadConfigFile } from '../core/config-file';
import { configPathFromArgs } from '../platform/config-path';
import { internalTokenFromEnv } from '../platform/internal-token';
import { createLogger } from '../platform/logger';
import { onShutdownSignal } from '../platform/shutdown';
import { connectWorker, requireTemporalAddress } from '../platform/temporal-connections';
import { startWorkflowWorker } from './workflow-worker';

/** Entry point for a workflow worker on its own host: `npm run workflow-worker -- --config path`. */
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
  onShutdownSignal(logger, async () => {
    await running.stop();
    await connection.close();
  });
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
