import { loadConfigFile } from '../core/config-file';
import { configPathFromArgs } from '../platform/config-path';
import { internalTokenFromEnv } from '../platform/internal-token';
import { createLogger } from '../platform/logger';
import { onShutdownSignal } from '../platform/shutdown';
import { connectClient, requireTemporalAddress } from '../platform/temporal-connections';
import { startGateway } from './gateway';

/** Entry point for a gateway on its own host: `npm run gateway -- --config path`. */
async function main(): Promise<void> {
  const logger = createLogger('gateway');
  const configPath = configPathFromArgs(process.argv.slice(2));
  const { config } = loadConfigFile(configPath);
  const { client, connection } = await connectClient(requireTemporalAddress(config), config.temporal.namespace);
  const gateway = await startGateway({ config, configPath, client, logger, internalToken: internalTokenFromEnv({ mintIfMissing: false }) });
  logger.info({ url: gateway.url }, 'gateway listening');
  // ORCH-3031: SIGHUP re-reads the config file, as POST /v1/config/reload does; a refused change is logged.
  process.on('SIGHUP', () => {
    try {
      gateway.configReloader.reload();
    } catch (error) {
      logger.error({ err: error }, 'config reload on SIGHUP refused');
    }
  });
  onShutdownSignal(logger, async () => {
    await gateway.close();
    await connection.close();
  });
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
