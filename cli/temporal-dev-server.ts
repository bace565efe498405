import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Connection } from '@temporalio/client';
import { ALL_SEARCH_ATTRIBUTES } from '../core/search-attributes';
import { freePort } from './free-port';
import { terminateChild } from '../platform/child-process';
import { boundToParent } from '../platform/parent-death';

export interface DevServerOptions {
  readonly binary: string;
  readonly dataDir: string;
  /** 0 picks a free port. */
  readonly port: number;
  /** 0 picks a free port; undefined runs headless. */
  readonly uiPort?: number | undefined;
  readonly namespace: string;
  /** false keeps the history in memory (tests). */
  readonly persist: boolean;
  /** Replaces the latency tuning (bench/temporal-sweep.ts compares settings); absent: DEV_SERVER_TUNING. */
  readonly tuning?: DevServerTuning | undefined;
}

/**
 * The settings that cut the dev server's per-task latency (../shared/reference/temporal-latency.md §1),
 * measured one by one by `npm run bench:temporal-sweep`.
 */
export interface DevServerTuning {
  /**
   * `history.transferProcessorMaxPollRPS`: the single shard loads new transfer tasks (activity and
   * workflow-task dispatch) at most this often; the default 20/s makes every load past the 20th in a
   * second wait up to 50 ms for a token.
   */
  readonly transferPollRps: number | undefined;
  /** SQLite `synchronous` in WAL mode: FULL fsyncs every commit, NORMAL only at checkpoints, OFF never. */
  readonly sqliteSynchronous: 'FULL' | 'NORMAL' | 'OFF';
}

/**
 * NORMAL, not OFF: in WAL mode a crash of any process (the chaos tests kill the server) loses nothing
 * committed; only a power loss can lose the last transactions, never corrupt the file. FULL costs an
 * fsync per write on the one connection every service shares.
 */
export const DEV_SERVER_TUNING: DevServerTuning = { transferPollRps: 1_000, sqliteSynchronous: 'NORMAL' };

export interface DevServer {
  readonly address: string;
  readonly uiUrl: string | undefined;
  readonly logFile: string;
  stop(): Promise<void>;
}

const READY_TIMEOUT_MS = 60_000;

/** One dev server's command line, its ports resolved once so that every restart serves the same addresses. */
export interface DevServerCommand {
  readonly binary: string;
  readonly args: readonly string[];
  readonly env: NodeJS.ProcessEnv;
  readonly address: string;
  readonly namespace: string;
  readonly uiUrl: string | undefined;
  readonly logFile: string;
}

/**
 * `temporal server start-dev` on loopback with what the orchestrator needs: version check off, priority
 * and fairness on a single task-queue partition (so priority order is exact), and our search attributes.
 */
export async function devServerCommand(options: DevServerOptions): Promise<DevServerCommand> {
  mkdirSync(options.dataDir, { recursive: true });
  const port = options.port === 0 ? await freePort() : options.port;
  const uiPort = options.uiPort === undefined ? undefined : options.uiPort === 0 ? await freePort() : options.uiPort;
  const httpPort = await freePort();
  const metricsPort = await freePort();
  const args = [
    'server', 'start-dev',
    '--ip', '127.0.0.1',
    '--port', String(port),
    '--http-port', String(httpPort),
    '--metrics-port', String(metricsPort),
    '--namespace', options.namespace,
    '--log-format', 'json',
    '--log-level', 'warn',
    ...dynamicConfigArgs(options.tuning ?? DEV_SERVER_TUNING),
    ...ALL_SEARCH_ATTRIBUTES.flatMap((key) => ['--search-attribute', `${key.name}=Keyword`]),
    ...(uiPort === undefined ? ['--headless'] : ['--ui-ip', '127.0.0.1', '--ui-port', String(uiPort), '--ui-disable-news-fetch']),
    ...(options.persist
      ? ['--db-filename', join(options.dataDir, 'temporal.sqlite'), '--sqlite-pragma', 'journal_mode=WAL', '--sqlite-pragma', `synchronous=${(options.tuning ?? DEV_SERVER_TUNING).sqliteSynchronous}`]
      : []),
  ];
  return {
    binary: options.binary,
    args,
    env: { ...process.env, TEMPORAL_VERSION_CHECK_DISABLED: '1' },
    address: `127.0.0.1:${port}`,
    namespace: options.namespace,
    uiUrl: uiPort === undefined ? undefined : `http://127.0.0.1:${uiPort}`,
    logFile: join(options.dataDir, 'temporal-server.log'),
  };
}

/** Starts one dev server (tests, benchmarks); `npm start` supervises its own (cli/supervision/temporal-supervisor.ts). */
export async function startDevServer(options: DevServerOptions): Promise<DevServer> {
  const server = await devServerCommand(options);
  const log = createWriteStream(server.logFile, { flags: 'a' });
  // Bound to this process: a test run or benchmark that is killed leaves no server behind.
  const command = boundToParent(server.binary, server.args);
  const child = spawn(command.command, command.args, { stdio: ['ignore', 'pipe', 'pipe'], env: server.env });
  child.stdout?.pipe(log);
  child.stderr?.pipe(log);
  try {
    await waitUntilServing(server, child);
  } catch (error) {
    child.kill('SIGKILL');
    throw new Error(`Temporal dev server did not start (${(error as Error).message}); see ${server.logFile}`);
  }
  return { address: server.address, uiUrl: server.uiUrl, logFile: server.logFile, stop: () => terminateChild(child, 5_000) };
}

export function dynamicConfigArgs(tuning: DevServerTuning): string[] {
  const values: Record<string, string> = {
    ...(tuning.transferPollRps === undefined ? {} : { 'history.transferProcessorMaxPollRPS': String(tuning.transferPollRps) }),
    'frontend.enableServerVersionCheck': 'false',
    'matching.enableFairness': 'true',
    'matching.useNewMatcher': 'true',
    'matching.numTaskqueueReadPartitions': '1',
    'matching.numTaskqueueWritePartitions': '1',
    'frontend.enableUpdateWorkflowExecution': 'true',
  };
  return Object.entries(values).flatMap(([key, value]) => ['--dynamic-config-value', `${key}=${value}`]);
}

/** Resolves once the server answers for its namespace; rejects when `child` exits first or after READY_TIMEOUT_MS. */
export async function waitUntilServing(server: Pick<DevServerCommand, 'address' | 'namespace'>, child: ChildProcess): Promise<void> {
  const { address, namespace } = server;
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let exited: string | undefined;
  child.once('exit', (code, signal) => {
    exited = `exited with ${code ?? signal}`;
  });
  let lastError = 'not answering';
  while (Date.now() < deadline) {
    if (exited) throw new Error(exited);
    try {
      const connection = await Connection.connect({ address, connectTimeout: 1_000 });
      try {
        await connection.workflowService.describeNamespace({ namespace });
        return;
      } finally {
        await connection.close();
      }
    } catch (error) {
      lastError = (error as Error).message;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  throw new Error(`not ready after ${READY_TIMEOUT_MS} ms: ${lastError}`);
}

