import type { ChildProcess } from 'node:child_process';
import { join, resolve } from 'node:path';
import { REPLICA_READY_EVENT } from '../gpu-workers/pool-worker-main-events';
import { loadConfigFile } from '../core/config-file';
import { configPathFromArgs } from '../platform/config-path';
import { internalTokenFromEnv } from '../platform/internal-token';
import { createLogger } from '../platform/logger';
import { httpUrl } from '../platform/http-url';
import { exitWithParent } from '../platform/parent-watch';
import { connectWorker, temporalAddress } from '../platform/temporal-connections';
import { reapLeftoverChildren, superviseChild, type SupervisedChild, type SupervisionContext } from './supervision/child-supervisor';
import { handleStackShutdown, type StackShutdown } from './supervision/stack-shutdown';
import { SupervisionBoard } from './supervision/supervision-board';
import { startGatewayCluster } from './gateway-cluster';
import { WORKFLOW_WORKER_POLLING_EVENT } from '../workflows/workflow-worker-events';
import { takeStackLock } from './stack-lock';
import { startGatewayProcess } from './gateway-process';
import { ensureDevApiKey, printDevApiKey } from './dev-api-key';
import { provisionPools } from './provision-pools';
import { registerSearchAttributes } from './search-attributes-registration';
import { ensureTemporalBinary } from './temporal-binary';
import { devServerCommand, waitUntilServing } from './temporal-dev-server';

/** A stop that runs longer than this kills what is left (pool workers have 15 s to finish, Temporal 5 s). */
const STOP_BOUND_MS = 30_000;
/** Starts in a row of the embedded Temporal server that never serve, after which the stack exits non-zero. */
const TEMPORAL_MAX_FAILED_STARTS = 5;

/**
 * `npm start`: the whole stack on one machine — the Temporal dev server (unless TEMPORAL_ADDRESS or
 * temporal.address names a cluster), the gateway and workflow worker in this process, and one child
 * process per pool replica. Every child is supervised (restarted with backoff, shown by GET /health) and
 * ends with this process however it dies (ADR 2026-12-06-no-orphans).
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
  const runDir = join(dataDir, 'run');
  const leftovers = await reapLeftoverChildren(runDir, logger);
  if (leftovers.length > 0) process.stderr.write(`[llama-orch] stopped ${leftovers.length} process(es) a previous stack on this data dir left running (pids ${leftovers.join(', ')})\n`);
  const internalToken = internalTokenFromEnv({ mintIfMissing: true });
  const devApiKey = config.auth.mode === 'enabled' && config.auth.dev_key ? ensureDevApiKey(config) : undefined;

  const board = new SupervisionBoard();
  let temporal: SupervisedChild | undefined;
  // Filled as the parts start: a stop during start-up stops what is already there.
  const started: { gateways?: { url: string; stop(): Promise<void> } } = {};
  const poolWorkers: SupervisedChild[] = [];
  const workflowWorkers: SupervisedChild[] = [];
  const shutdown = handleStackShutdown(logger, {
    boundMs: STOP_BOUND_MS,
    stop: async () => {
      await Promise.all(poolWorkers.map((child) => child.stop()));
      await started.gateways?.stop();
      await Promise.all(workflowWorkers.map((child) => child.stop()));
      await temporal?.stop();
    },
    forceKill: () => {
      for (const child of [...poolWorkers, ...workflowWorkers, ...(temporal ? [temporal] : [])]) child.kill();
    },
  });
  const supervision: SupervisionContext = { board, logger, runDir, onGiveUp: (name, reason) => shutdown.fail(`${name} cannot be restarted: ${reason}`) };

  let uiUrl: string | undefined;
  let address = temporalAddress(config);
  if (!address) {
    const server = await devServerCommand({
      binary: await ensureTemporalBinary(),
      dataDir,
      port: config.temporal.embedded.port,
      uiPort: config.temporal.embedded.ui_port,
      namespace: config.temporal.namespace,
      persist: true,
    });
    process.stderr.write(`[llama-orch] starting the Temporal dev server (${server.binary})\n`);
    temporal = superviseChild(
      {
        name: 'temporal',
        role: 'temporal',
        command: server.binary,
        args: server.args,
        env: server.env,
        output: { logFile: server.logFile },
        ready: (child) => waitUntilServing(server, child),
        stopGraceMs: 5_000,
        // Every task waits on it: come back as soon as the port is free, on the same files and ports.
        firstBackoffMs: 250,
        maxFailedStarts: TEMPORAL_MAX_FAILED_STARTS,
      },
      supervision,
    );
    try {
      await temporal.firstStart;
    } catch (error) {
      throw new Error(`the Temporal dev server did not start (${(error as Error).message}); see ${server.logFile}`);
    }
    address = server.address;
    uiUrl = server.uiUrl;
  } else {
    const registration = await connectWorker(address, logger);
    try {
      await registerSearchAttributes(registration, config.temporal.namespace);
    } finally {
      await registration.close();
    }
  }
  // ORCH_EXIT_WITH_PARENT: pool workers also watch for this process's end where setpriv is missing (platform/parent-watch.ts).
  const childEnv = { ...process.env, TEMPORAL_ADDRESS: address, ORCH_INTERNAL_TOKEN: internalToken, ORCH_EXIT_WITH_PARENT: '1' };
  const gateways = await startGateways(config.gateway.processes, { config, configPath, address, internalToken, logger }, childEnv, board, shutdown);

  started.gateways = gateways;

  for (let index = 0; index < config.workflow_worker.processes; index += 1) {
    workflowWorkers.push(
      superviseChild(
        {
          name: `workflow-worker-${index}`,
          role: 'workflow-worker',
          command: process.execPath,
          args: [resolve(__dirname, '../workflows/workflow-worker-main.js'), '--config', configPath],
          env: childEnv,
          output: 'inherit',
          ipc: true,
          ready: workflowWorkerPolling,
          stopGraceMs: 15_000,
          firstBackoffMs: 250,
        },
        supervision,
      ),
    );
  }

  // The llama-server build and the models, into the cache with progress, before any replica needs them.
  await provisionPools(config);
  for (const pool of config.pools) {
    for (let replicaIndex = 0; replicaIndex < pool.replicas; replicaIndex += 1) {
      poolWorkers.push(
        superviseChild(
          {
            name: `pool-worker-${pool.id}-r${replicaIndex}`,
            role: 'pool-worker',
            command: process.execPath,
            args: [resolve(__dirname, '../gpu-workers/pool-worker-main.js'), '--config', configPath, '--pool', pool.id, '--replica', String(replicaIndex)],
            env: childEnv,
            output: 'inherit',
            ipc: true,
            ready: poolWorkerReplicaReady,
            stopGraceMs: 15_000,
            firstBackoffMs: 1_000,
          },
          supervision,
        ),
      );
    }
  }

  // Under `npm start`, npm is the parent: a process manager that kills npm (even with SIGKILL) stops the stack.
  // Started from a shell directly (`nohup node dist/cli/start.js &`), the stack outlives that shell.
  if (process.env['npm_lifecycle_event'] === 'start') exitWithParent(logger, () => shutdown.stop());
  printBanner(gateways.url, uiUrl, address, config.pools[0], config.gateway.processes, board);
  if (devApiKey) printDevApiKey(devApiKey, gateways.url);
}

/** A workflow worker of its own serves once it polls its queue; it says so over IPC (workflows/workflow-worker-main.ts). */
function workflowWorkerPolling(child: ChildProcess): Promise<void> {
  return new Promise((resolveReady, reject) => {
    child.on('message', (message: unknown) => {
      if ((message as { event?: unknown }).event === WORKFLOW_WORKER_POLLING_EVENT) resolveReady();
    });
    child.once('exit', () => reject(new Error('exited before it polled')));
  });
}

/**
 * A pool worker serves once its replica is Ready (or drained by an operator); it says so over IPC
 * (gpu-workers/pool-worker-main.ts). No time limit: loading a model can take long, and a replica that
 * cannot start stays up to report why on its health.
 */
function poolWorkerReplicaReady(child: ChildProcess): Promise<void> {
  return new Promise((resolveReady, reject) => {
    child.on('message', (message: unknown) => {
      if ((message as { event?: unknown }).event === REPLICA_READY_EVENT) resolveReady();
    });
    child.once('exit', () => reject(new Error('exited before its replica was Ready')));
  });
}

/**
 * The gateway (with its workflow worker, unless those run apart) in this process, or `gateway.processes` of them as cluster workers
 * sharing the port (admission and refusals then use that many cores; streams relay between them).
 */
async function startGateways(
  processes: number,
  options: Omit<Parameters<typeof startGatewayProcess>[0], 'sharedPort' | 'supervision' | 'withWorkflowWorker'>,
  childEnv: NodeJS.ProcessEnv,
  board: SupervisionBoard,
  shutdown: StackShutdown,
): Promise<{ url: string; stop(): Promise<void> }> {
  if (processes <= 1) {
    const running = await startGatewayProcess({ ...options, sharedPort: false, withWorkflowWorker: options.config.workflow_worker.processes === 0, supervision: () => board.snapshot() });
    // Without its workflow worker this process admits tasks nothing runs: end, and let the outer supervisor restart.
    void running.workflowWorkerDone.then(
      () => shutdown.fail('the workflow worker stopped'),
      (error: unknown) => shutdown.fail(`the workflow worker failed: ${error instanceof Error ? error.message : String(error)}`),
    );
    return { url: running.gateway.url, stop: () => running.stop() };
  }
  const gatewayCluster = startGatewayCluster(processes, ['--config', options.configPath], childEnv, options.logger, board);
  // SIGHUP reloads the config in every gateway process (ORCH-3031).
  process.on('SIGHUP', () => gatewayCluster.signal('SIGHUP'));
  await gatewayCluster.ready;
  return { url: httpUrl(options.config.gateway.host, options.config.gateway.port), stop: () => gatewayCluster.stop() };
}

function printBanner(apiUrl: string, uiUrl: string | undefined, temporal: string, pool: { engine: string; model: string } | undefined, gatewayProcesses: number, board: SupervisionBoard): void {
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
      `  Health       ${apiUrl}/health`,
      '',
      'Supervised (restarted if they die; all end when this process ends):',
      ...board.snapshot().map((entry) => `  ${entry.name.padEnd(36)} ${entry.role.padEnd(12)} pid ${String(entry.pid ?? '-').padEnd(8)} ${entry.state}`),
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
