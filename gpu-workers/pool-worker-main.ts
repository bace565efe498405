import { parseArgs } from 'node:util';
import { loadConfigFile } from '../core/config-file';
import { configPathFromArgs } from '../platform/config-path';
import { internalTokenFromEnv } from '../platform/internal-token';
import { createLogger } from '../platform/logger';
import { exitWithParent } from '../platform/parent-watch';
import { onShutdownSignal } from '../platform/shutdown';
import { connectWorker, requireTemporalAddress } from '../platform/temporal-connections';
import { cachedPoolArtifacts } from '../cli/provision-pools';
import { fastStartHostOf, startPoolManager } from './pool-worker';
import { REPLICA_READY_EVENT } from './pool-worker-main-events';

const READY_WAIT_MS = 24 * 60 * 60 * 1000;

/** Entry point for one pool replica: `npm run pool-worker -- --config path --pool ID [--replica N]`. */
async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const { values } = parseArgs({ args, options: { config: { type: 'string' }, pool: { type: 'string' }, replica: { type: 'string' } } });
  const { config } = loadConfigFile(configPathFromArgs(args));
  const pool = config.pools.find((candidate) => candidate.id === values.pool);
  if (!pool) throw new Error(`--pool must name a pool in the config (${config.pools.map((candidate) => candidate.id).join(', ')})`);
  const replicaIndex = Number(values.replica ?? '0');
  if (!Number.isInteger(replicaIndex) || replicaIndex < 0) throw new Error('--replica must be a non-negative integer');

  const logger = createLogger('pool-worker');
  const address = requireTemporalAddress(config);
  const connection = await connectWorker(address, logger);
  // Not waiting for Ready: a replica that cannot start stays up to report why (health) and retries.
  const running = startPoolManager({
    pool,
    replicaIndex,
    namespace: config.temporal.namespace,
    connection,
    internalToken: internalTokenFromEnv({ mintIfMissing: false }),
    logger,
    config,
    artifacts: cachedPoolArtifacts(),
    fastStartHost: fastStartHostOf(config),
  });
  const stop = async (): Promise<void> => {
    await running.stop();
    await connection.close();
  };
  onShutdownSignal(logger, stop);
  // Under `npm start`, a parent that died (even by SIGKILL) takes this replica and its engine with it.
  if (process.env['ORCH_EXIT_WITH_PARENT'] === '1') exitWithParent(logger, stop);
  if (process.send) void tellSupervisorWhenReady(running);
  await running.done;
}

/** Under `npm start` (an IPC channel): the supervisor counts this process as serving once its replica is. */
async function tellSupervisorWhenReady(running: ReturnType<typeof startPoolManager>): Promise<void> {
  try {
    await running.waitForStatus((status) => status.ready || status.state === 'drained', READY_WAIT_MS);
    process.send?.({ event: REPLICA_READY_EVENT });
  } catch {
    // Never Ready within a day: the supervisor keeps showing it as starting, and health says why.
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
