import { loadConfigFile } from '../core/config-file';
import { configPathFromArgs } from '../platform/config-path';
import { internalTokenFromEnv } from '../platform/internal-token';
import { createLogger } from '../platform/logger';
import { exitWithParent } from '../platform/parent-watch';
import { onShutdownSignal } from '../platform/shutdown';
import { requireTemporalAddress } from '../platform/temporal-connections';
import { startGatewayProcess } from './gateway-process';

/** One of `npm start`'s gateway processes in cluster mode (cli/gateway-cluster.ts); tells the primary once it listens. */
async function main(): Promise<void> {
  const logger = createLogger(`gateway-${process.env['ORCH_GATEWAY_PROCESS'] ?? '0'}`);
  const configPath = configPathFromArgs(process.argv.slice(2));
  const { config } = loadConfigFile(configPath);
  const running = await startGatewayProcess({
    config,
    configPath,
    address: requireTemporalAddress(config),
    internalToken: internalTokenFromEnv({ mintIfMissing: false }),
    logger,
    sharedPort: true,
  });
  process.send?.({ event: 'gateway-listening', url: running.gateway.url });
  onShutdownSignal(logger, () => running.stop());
  // A cluster worker of `npm start`: it ends with its primary, however that died.
  exitWithParent(logger, () => running.stop());
}

main().catch((error: unknown) => {
  process.stderr.write(`gateway process failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
