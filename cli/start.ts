import { resolve } from 'node:path';
import { loadConfigFile } from '../core/config-file';
import { configPathFromArgs } from '../platform/config-path';
import { internalTokenFromEnv } from '../platform/internal-token';
import { createLogger } from '../platform/logger';
import { httpUrl } from '../platform/http-url';
import { onShutdownSignal } from '../platform/shutdown';
import { connectWorker, temporalAddress } from '../platform/temporal-connections';
import { superviseChild, type SupervisedChild } from './child-supervisor';
import { startGatewayCluster } from './gateway-cluster';
import { takeStackLock } from './stack-lock';
import { startGatewayProcess } from './gateway-process';
import { ensureDevApiKey, printDevApiKey } from './dev-api-key';
import { provisionPools } from './provision-pools';
import { registerSearchAttributes } from './search-attributes-registration';
import { ensureTemporalBinary } from './temporal-binary';
import { startDevServer, type DevServer } from './temporal-dev-server';

/**
 * `npm start`: the whole stack on one machine — the Temporal dev server (unless TEMPORAL_ADDRESS or
 * temporal.address names a cluster), the gateway and workflow worker in this process, and one child
 * process per pool replica.
 */
async function main(): Promise<void> {
  const logger = createLogger('llama-orch');
  const configPath = resolve(configPathFromArgs(process.argv.slice(2)));
  const { config, ignoredFields } = loadConfigFile(configPath);
  if (ignoredFields.length > 0) logger.warn({ ignored_fields: ignoredFields }, 'compat mode: unknown config fields ignored');
  const dataDir = resolve(config.data_dir);
  // Before anything starts: a second stack on this data dir would share its Temporal files and replicas.
  const lock = takeStackLock(dataDir, httpUrl(config.gateway.host, config.gateway.port));
  process.once('exit', () => lock.release());
  const internalToken = internalTokenFromEnv({ mintIfMissing: true });
  const devApiKey = config.auth.mode === 'enabled' && config.auth.dev_key ? ensureDevApiKey(config) : undefined;

  let devServer: DevServer | undefined;
  let address = temporalAddress(config);
  if (!address) {
    const binary = await ensureTemporalBinary();
    process.stderr.write(`[llama-orch] starting the Temporal dev server (${binary})\n`);
    devServer = await startDevServer({
      binary,
      dataDir,
      port: config.temporal.embedded.port,
      uiPort: config.temporal.embedded.ui_port,
      namespace: config.temporal.namespace,
      persist: true,
    });
    address = devServer.address;
  }
  if (!devServer) {
    const registration = await connectWorker(address, logger);
    try {
      await registerSearchAttributes(registration, config.temporal.namespace);
    } finally {
      await registration.close();
    }
  }
  // ORCH_EXIT_WITH_PARENT: pool workers end with this process, however it dies (platform/parent-watch.ts).
  const childEnv = { ...process.env, TEMPORAL_ADDRESS: address, ORCH_INTERNAL_TOKEN: internalToken, ORCH_EXIT_WITH_PARENT: '1' };
  const gateways = await startGateways(config.gateway.processes, { config, configPath, address, internalToken, logger }, childEnv);

  // The llama-server build and the models, into the cache with progress, before any replica needs them.
  await provisionPools(config);
  const children: SupervisedChild[] = config.pools.flatMap((pool) =>
    Array.from({ length: pool.replicas }, (_unused, replicaIndex) =>
      superviseChild(
        `${pool.id}-r${replicaIndex}`,
        [resolve(__dirname, '../gpu-workers/pool-worker-main.js'), '--config', configPath, '--pool', pool.id, '--replica', String(replicaIndex)],
        childEnv,
        logger,
      ),
    ),
  );

  printBanner(gateways.url, devServer?.uiUrl, address, config.pools[0], config.gateway.processes);
  if (devApiKey) printDevApiKey(devApiKey, gateways.url);
  onShutdownSignal(logger, async () => {
    await Promise.all(children.map((child) => child.stop()));
    await gateways.stop();
    await devServer?.stop();
  });
}

/**
 * The gateway with its workflow worker in this process, or `gateway.processes` of them as cluster workers
 * sharing the port (admission and refusals then use that many cores; streams relay between them).
 */
async function startGateways(
  processes: number,
  options: Omit<Parameters<typeof startGatewayProcess>[0], 'sharedPort'>,
  childEnv: NodeJS.ProcessEnv,
): Promise<{ url: string; stop(): Promise<void> }> {
  if (processes <= 1) {
    const running = await startGatewayProcess({ ...options, sharedPort: false });
    return { url: running.gateway.url, stop: () => running.stop() };
  }
  const gatewayCluster = startGatewayCluster(processes, ['--config', options.configPath], childEnv, options.logger);
  // SIGHUP reloads the config in every gateway process (ORCH-3031).
  process.on('SIGHUP', () => gatewayCluster.signal('SIGHUP'));
  await gatewayCluster.ready;
  return { url: httpUrl(options.config.gateway.host, options.config.gateway.port), stop: () => gatewayCluster.stop() };
}

function printBanner(apiUrl: string, uiUrl: string | undefined, temporal: string, pool: { engine: string; model: string } | undefined, gatewayProcesses: number): void {
  const example = pool
    ? [
        `  TASK=$(cat /proc/sys/kernel/random/uuid)`,
        `  curl -s -X POST ${apiUrl}/v1/tasks -H "Authorization: Bearer $ORCH_API_KEY" -H 'content-type: application/json' -d '{"task_id":"'$TASK'","session_id":"'$(cat /proc/sys/kernel/random/uuid)'","workload":"completion","model_ref":"${pool.model}","engine":"${pool.engine}","ctx":2048,"priority":"interactive","prompt":"Hello","max_tokens":32,"deadline_ms":30000}'`,
        `  curl -N -H "Authorization: Bearer $ORCH_API_KEY" ${apiUrl}/v1/tasks/$TASK/stream`,
      ].join('\n')
    : '';
  process.stderr.write(
    [
      '',
      'llama-orch is running',
      `  API          ${apiUrl}${gatewayProcesses > 1 ? `  (${gatewayProcesses} gateway processes)` : ''}`,
      `  Temporal     ${temporal}`,
      `  Web UI       ${uiUrl ?? '(the cluster\'s own Web UI)'}  — find a job with: TaskId="<task_id>"`,
      '',
      'Try it:',
      example,
      '',
    ].join('\n'),
  );
}

main().catch((error: unknown) => {
  process.stderr.write(`llama-orch failed to start: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
