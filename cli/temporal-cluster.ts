import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chownSync, createWriteStream, existsSync, mkdirSync, readFileSync, readdirSync, realpathSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { delimiter, dirname, join, resolve } from 'node:path';
import { msToTs } from '@temporalio/common/lib/time';
import { NativeConnection } from '@temporalio/worker';
import { ALL_SEARCH_ATTRIBUTES } from '../core/search-attributes';
import { terminateChild } from '../platform/child-process';
import { cacheDir } from './cache-dir';
import { runCommand } from './run-command';
import { registerSearchAttributes } from './search-attributes-registration';

/**
 * `npm run temporal:cluster`: a real Temporal cluster on this machine, from package registries only —
 * the server and its SQL schema tool built with `go install` from the Go module proxy, PostgreSQL from
 * Debian, the Web UI server from the Go module proxy (its module carries the built UI). Idempotent:
 * builds, initdb, role, databases and schema are skipped or no-ops when already there. Stays in the
 * foreground supervising Postgres, the server and the UI; Ctrl-C / SIGTERM stops all of them.
 * Layout, multi-host use and the config files: ops/temporal-cluster/README.md.
 */

export const TEMPORAL_SERVER_VERSION = 'v1.32.2';
/** v2.58.x needs go.temporal.io/api v1.64.0, which the Go module proxy does not serve; v2.56.4 builds. */
export const TEMPORAL_UI_SERVER_VERSION = 'v2.56.4';
/** Both modules' go.mod say `go 1.26.10`; an older local Go builds them with this toolchain from the module proxy. */
const MIN_GO = [1, 26, 10] as const;
const GO_TOOLCHAIN = 'go1.27.3';
const PG_OS_USER = 'postgres';
const DB_USER = 'temporal';
/** Postgres listens on loopback only, so the upstream development password is kept. */
const DB_PASSWORD = 'temporal';
const RETENTION_MS = 3 * 24 * 3600 * 1000;
const OPS_DIR = resolve(__dirname, '..', '..', 'ops', 'temporal-cluster');

interface Options {
  readonly port: number;
  readonly shards: number;
  readonly syncCommit: 'on' | 'off';
  readonly dataDir: string;
  readonly pgPort: number;
  readonly uiPort: number | undefined;
  readonly metricsPort: number | undefined;
  readonly namespace: string;
  readonly buildOnly: boolean;
}

interface Binaries {
  readonly server: string;
  readonly sqlTool: string;
  readonly uiServer: string | undefined;
}

const USAGE = `usage: temporal-cluster [--port 7233] [--shards 8] [--sync-commit on|off] [--data-dir DIR]
                        [--pg-port PORT] [--ui-port PORT | --no-ui] [--metrics-port PORT | --no-metrics]
                        [--namespace default] [--build-only]
Every flag also reads TEMPORAL_CLUSTER_<FLAG> from the environment (e.g. TEMPORAL_CLUSTER_SYNC_COMMIT=off).
Other ports follow --port P: history P+1, matching P+2, worker P+6, HTTP P+10, membership P-300+{0,1,2,6},
UI P+1000, metrics P+767, Postgres P+8199 (defaults 8233, 8000, 15432).`;

function progress(message: string): void {
  process.stderr.write(`[temporal-cluster] ${message}\n`);
}

export function parseOptions(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): Options {
  const values = new Map<string, string>();
  for (let index = 0; index < argv.length; index++) {
    const arg = argv[index] ?? '';
    if (arg === '--help' || arg === '-h') {
      process.stderr.write(`${USAGE}\n`);
      process.exit(0);
    }
    if (!arg.startsWith('--')) throw new Error(`unexpected argument ${arg}\n${USAGE}`);
    const [name, inline] = arg.slice(2).split(/=(.*)/s, 2) as [string, string | undefined];
    if (['no-ui', 'no-metrics', 'build-only'].includes(name)) {
      values.set(name, 'true');
      continue;
    }
    const value = inline ?? argv[++index];
    if (value === undefined) throw new Error(`--${name} needs a value\n${USAGE}`);
    values.set(name, value);
  }
  const known = ['port', 'shards', 'sync-commit', 'data-dir', 'pg-port', 'ui-port', 'no-ui', 'metrics-port', 'no-metrics', 'namespace', 'build-only'];
  for (const name of values.keys()) if (!known.includes(name)) throw new Error(`unknown flag --${name}\n${USAGE}`);
  const get = (name: string): string | undefined => values.get(name) ?? env[`TEMPORAL_CLUSTER_${name.toUpperCase().replace(/-/g, '_')}`];
  const int = (name: string, fallback: number, min = 1, max = 65_535): number => {
    const raw = get(name);
    if (raw === undefined || raw === '') return fallback;
    const parsed = Number(raw);
    if (!Number.isInteger(parsed) || parsed < min || parsed > max) throw new Error(`--${name} must be an integer in [${min}, ${max}], got ${raw}`);
    return parsed;
  };
  const port = int('port', 7233, 301, 56_000);
  const syncCommit = get('sync-commit') ?? 'on';
  if (syncCommit !== 'on' && syncCommit !== 'off') throw new Error(`--sync-commit must be on or off, got ${syncCommit}`);
  const flag = (name: string): boolean => ['1', 'true', 'yes'].includes((get(name) ?? '').toLowerCase());
  return {
    port,
    shards: int('shards', 8, 1, 16_384),
    syncCommit,
    dataDir: resolve(get('data-dir') ?? join(cacheDir(), 'temporal-cluster', 'data')),
    pgPort: int('pg-port', port + 8199),
    uiPort: flag('no-ui') ? undefined : int('ui-port', port + 1000),
    metricsPort: flag('no-metrics') ? undefined : int('metrics-port', port + 767),
    namespace: get('namespace') ?? 'default',
    buildOnly: flag('build-only'),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Build

async function ensureBinaries(withUi: boolean): Promise<Binaries> {
  const binDir = join(cacheDir(), 'temporal-cluster', TEMPORAL_SERVER_VERSION, 'bin');
  const server = join(binDir, 'temporal-server');
  const sqlTool = join(binDir, 'temporal-sql-tool');
  const uiServer = join(binDir, `temporal-ui-server-${TEMPORAL_UI_SERVER_VERSION}`);
  const needServer = !existsSync(server) || !existsSync(sqlTool);
  const needUi = withUi && !existsSync(uiServer);
  if (needServer || needUi) {
    const env = goBuildEnv();
    if (needServer) {
      await goInstall(
        [`go.temporal.io/server/cmd/server@${TEMPORAL_SERVER_VERSION}`, `go.temporal.io/server/cmd/tools/sql@${TEMPORAL_SERVER_VERSION}`],
        { server, sql: sqlTool },
        env,
        `Temporal server ${TEMPORAL_SERVER_VERSION} and its SQL tool`,
      );
    }
    if (needUi) {
      try {
        await goInstall([`github.com/temporalio/ui-server/v2/cmd/server@${TEMPORAL_UI_SERVER_VERSION}`], { server: uiServer }, env,
          `Temporal Web UI server ${TEMPORAL_UI_SERVER_VERSION}`);
      } catch (error) {
        progress(`the Web UI server did not build (${(error as Error).message}); going on without the UI`);
        return { server, sqlTool, uiServer: undefined };
      }
    }
  }
  return { server, sqlTool, uiServer: withUi ? uiServer : undefined };
}

/** `go install` into a staging GOBIN, then moves each built binary (named by its package) to its final name. */
async function goInstall(packages: readonly string[], renames: Readonly<Record<string, string>>, env: NodeJS.ProcessEnv, what: string): Promise<void> {
  const finalDir = dirname(Object.values(renames)[0] ?? '.');
  const staging = `${finalDir}.partial`;
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging, { recursive: true });
  mkdirSync(finalDir, { recursive: true });
  progress(`building ${what} with go install (GOTOOLCHAIN=${env['GOTOOLCHAIN'] ?? 'default'}) — one time, several minutes on 2 cores`);
  const started = Date.now();
  await runCommand('go', ['install', '-trimpath', '-ldflags=-s -w', '-tags', 'disable_grpc_modules', ...packages], { ...env, GOBIN: staging });
  for (const [built, target] of Object.entries(renames)) renameSync(join(staging, built), target);
  rmSync(staging, { recursive: true, force: true });
  progress(`built ${what} in ${Math.round((Date.now() - started) / 1000)} s`);
}

function goBuildEnv(): NodeJS.ProcessEnv {
  const probe = spawnSync('go', ['env', 'GOVERSION'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) throw new Error('go is not installed: the Temporal server is built from the Go module proxy with `go install`');
  const local = probe.stdout.trim();
  const env: NodeJS.ProcessEnv = { ...process.env, CGO_ENABLED: '0' };
  if (!process.env['GOTOOLCHAIN'] && !goAtLeast(local, MIN_GO)) {
    progress(`local ${local} is older than go${MIN_GO.join('.')}, which ${TEMPORAL_SERVER_VERSION} needs: using GOTOOLCHAIN=${GO_TOOLCHAIN} (from the module proxy)`);
    env['GOTOOLCHAIN'] = GO_TOOLCHAIN;
  }
  return env;
}

export function goAtLeast(goVersion: string, min: readonly number[]): boolean {
  const parts = /^go(\d+)\.(\d+)(?:\.(\d+))?/.exec(goVersion);
  if (!parts) return false;
  const have = [Number(parts[1]), Number(parts[2]), Number(parts[3] ?? 0)];
  for (let index = 0; index < min.length; index++) {
    const a = have[index] ?? 0;
    const b = min[index] ?? 0;
    if (a !== b) return a > b;
  }
  return true;
}

// ---------------------------------------------------------------------------------------------------------------
// PostgreSQL

/** The newest Debian layout (/usr/lib/postgresql/N/bin), else the directory of `initdb` on PATH. */
function findPostgresBinDir(): string | undefined {
  const debian = '/usr/lib/postgresql';
  if (existsSync(debian)) {
    const majors = readdirSync(debian).filter((name) => /^\d+$/.test(name)).sort((a, b) => Number(b) - Number(a));
    for (const major of majors) {
      const dir = join(debian, major, 'bin');
      if (existsSync(join(dir, 'initdb')) && existsSync(join(dir, 'postgres'))) return dir;
    }
  }
  const initdb = findOnPath('initdb');
  if (initdb) {
    const dir = dirname(realpathSync(initdb));
    if (existsSync(join(dir, 'postgres'))) return dir;
  }
  return undefined;
}

async function ensurePostgresInstalled(): Promise<string> {
  const found = findPostgresBinDir();
  if (found) return found;
  if (!isRoot()) throw new Error('PostgreSQL is not installed: install it (Debian: sudo apt-get install postgresql) and run this again');
  progress('installing PostgreSQL (Debian package postgresql) — one time');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  await runToStderr('apt-get', ['update'], env);
  await runToStderr('apt-get', ['install', '-y', '--no-install-recommends', 'postgresql'], env);
  const installed = findPostgresBinDir();
  if (!installed) throw new Error('apt-get installed postgresql but no initdb/postgres was found');
  return installed;
}

/**
 * Postgres refuses to run as root. As root, every Postgres program runs as the `postgres` system user via
 * setpriv (which execs, so the child's pid is Postgres's own). When that user cannot reach the data dir
 * (it lives under /root, mode 700), it gets CAP_DAC_READ_SEARCH as an ambient capability instead of
 * loosening /root's permissions.
 */
interface PgUser {
  readonly wrap: (command: string, args: readonly string[]) => [string, string[]];
  readonly chown: (path: string) => void;
  readonly note: string;
}

async function pgUser(dataDir: string): Promise<PgUser> {
  if (!isRoot()) return { wrap: (command, args) => [command, [...args]], chown: () => undefined, note: 'as the current user' };
  if (spawnSync('id', ['-u', PG_OS_USER]).status !== 0) {
    progress(`creating the system user ${PG_OS_USER} (Postgres refuses to run as root)`);
    await runToStderr('useradd', ['--system', '--user-group', '--no-create-home', '--home-dir', '/nonexistent', '--shell', '/usr/sbin/nologin', PG_OS_USER]);
  }
  const uid = Number(spawnSync('id', ['-u', PG_OS_USER], { encoding: 'utf8' }).stdout.trim());
  const gid = Number(spawnSync('id', ['-g', PG_OS_USER], { encoding: 'utf8' }).stdout.trim());
  const base = [`--reuid=${PG_OS_USER}`, `--regid=${PG_OS_USER}`, '--init-groups'];
  const reachable = spawnSync('setpriv', [...base, 'test', '-x', dataDir]).status === 0;
  const caps = reachable ? [] : ['--inh-caps=+dac_read_search', '--ambient-caps=+dac_read_search'];
  return {
    wrap: (command, args) => ['setpriv', [...base, ...caps, command, ...args]],
    chown: (path) => chownSync(path, uid, gid),
    note: `as user ${PG_OS_USER}${reachable ? '' : ` (with CAP_DAC_READ_SEARCH: ${dataDir} is not reachable for it)`}`,
  };
}

interface PgPaths {
  readonly bin: string;
  readonly data: string;
  readonly socketDir: string;
  readonly logs: string;
}

async function initPostgres(paths: PgPaths, user: PgUser): Promise<void> {
  if (existsSync(join(paths.data, 'PG_VERSION'))) return;
  progress(`initialising a private PostgreSQL cluster in ${paths.data}`);
  rmSync(paths.data, { recursive: true, force: true });
  mkdirSync(paths.data, { recursive: true, mode: 0o700 });
  user.chown(paths.data);
  // Superuser `postgres` over the Unix socket only (its directory is private); TCP needs a password.
  const [command, args] = user.wrap(join(paths.bin, 'initdb'), [
    '-D', paths.data, '-U', 'postgres', '-E', 'UTF8', '--locale=C', '--auth-local=trust', '--auth-host=scram-sha-256',
  ]);
  await runLogged(command, args, join(paths.logs, 'setup.log'));
}

function startPostgres(paths: PgPaths, user: PgUser, options: Options): ChildProcess {
  mkdirSync(paths.socketDir, { recursive: true, mode: 0o700 });
  user.chown(paths.socketDir);
  const settings: Record<string, string> = {
    port: String(options.pgPort),
    listen_addresses: '127.0.0.1',
    unix_socket_directories: paths.socketDir,
    synchronous_commit: options.syncCommit,
    // 4 services x (8 + 2) pooled connections in the all-in-one process, plus the tools.
    max_connections: '100',
    shared_buffers: '256MB',
    logging_collector: 'off',
  };
  const [command, args] = user.wrap(join(paths.bin, 'postgres'), ['-D', paths.data, ...Object.entries(settings).flatMap(([key, value]) => ['-c', `${key}=${value}`])]);
  return spawnLogged(command, args, process.env, join(paths.logs, 'postgres.log'));
}

async function psql(paths: PgPaths, options: Options, sql: string): Promise<string> {
  const binary = existsSync(join(paths.bin, 'psql')) ? join(paths.bin, 'psql') : 'psql';
  const result = await capture(binary, ['-h', paths.socketDir, '-p', String(options.pgPort), '-U', 'postgres', '-d', 'postgres', '-v', 'ON_ERROR_STOP=1', '-Atqc', sql]);
  return result.trim();
}

async function waitForPostgres(paths: PgPaths, options: Options, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + 60_000;
  let last = '';
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`postgres exited: ${tail(join(paths.logs, 'postgres.log'))}`);
    try {
      await psql(paths, options, 'SELECT 1');
      return;
    } catch (error) {
      last = (error as Error).message;
      await sleep(250);
    }
  }
  throw new Error(`postgres did not accept connections within 60 s: ${last}`);
}

/** The temporal role, both databases (Temporal's sql tool) and their schema: each step a no-op when done. */
async function setupDatabases(paths: PgPaths, options: Options, binaries: Binaries): Promise<void> {
  await psql(paths, options, `DO $$ BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '${DB_USER}') THEN
      CREATE ROLE ${DB_USER} LOGIN CREATEDB PASSWORD '${DB_PASSWORD}';
    END IF; END $$`);
  const log = join(paths.logs, 'setup.log');
  for (const [database, schema] of [['temporal', 'postgresql/v12/temporal'], ['temporal_visibility', 'postgresql/v12/visibility']] as const) {
    const common = ['--ep', '127.0.0.1', '-p', String(options.pgPort), '-u', DB_USER, '--pw', DB_PASSWORD, '--pl', 'postgres12', '--db', database];
    const exists = (await psql(paths, options, `SELECT 1 FROM pg_database WHERE datname = '${database}'`)) === '1';
    if (!exists) {
      progress(`creating database ${database}`);
      await runLogged(binaries.sqlTool, [...common, 'create'], log);
    }
    await runLogged(binaries.sqlTool, [...common, 'setup-schema', '-v', '0.0'], log);
    await runLogged(binaries.sqlTool, [...common, 'update-schema', '--schema-name', schema], log);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Temporal server and UI

function serverEnv(options: Options, dynamicConfig: string): NodeJS.ProcessEnv {
  const p = options.port;
  return {
    ...process.env,
    TEMPORAL_VERSION_CHECK_DISABLED: '1',
    LOG_LEVEL: process.env['LOG_LEVEL'] ?? 'warn',
    NUM_HISTORY_SHARDS: String(options.shards),
    POSTGRES_SEEDS: '127.0.0.1',
    DB_PORT: String(options.pgPort),
    POSTGRES_USER: DB_USER,
    POSTGRES_PWD: DB_PASSWORD,
    BIND_ON_IP: '127.0.0.1',
    TEMPORAL_BROADCAST_ADDRESS: '',
    CLUSTER_RPC_ADDRESS: '',
    CLUSTER_HTTP_ADDRESS: '',
    FRONTEND_GRPC_PORT: String(p),
    HISTORY_GRPC_PORT: String(p + 1),
    MATCHING_GRPC_PORT: String(p + 2),
    WORKER_GRPC_PORT: String(p + 6),
    FRONTEND_HTTP_PORT: String(p + 10),
    FRONTEND_MEMBERSHIP_PORT: String(p - 300),
    HISTORY_MEMBERSHIP_PORT: String(p - 299),
    MATCHING_MEMBERSHIP_PORT: String(p - 298),
    WORKER_MEMBERSHIP_PORT: String(p - 294),
    PROMETHEUS_ENDPOINT: options.metricsPort === undefined ? '' : `127.0.0.1:${options.metricsPort}`,
    DYNAMIC_CONFIG_FILE_PATH: dynamicConfig,
  };
}

function serverPorts(options: Options): number[] {
  const p = options.port;
  return [p, p + 1, p + 2, p + 6, p + 10, p - 300, p - 299, p - 298, p - 294, ...(options.metricsPort === undefined ? [] : [options.metricsPort])];
}

function grpcCode(error: unknown): number | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}

/** Waits until the frontend answers describeNamespace; creates the namespace when the cluster is new. */
async function waitForServer(address: string, namespace: string, child: ChildProcess, logFile: string): Promise<NativeConnection> {
  const deadline = Date.now() + 180_000;
  let last = 'not answering';
  let registered = false;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`the Temporal server exited: ${tail(logFile)}`);
    let connection: NativeConnection | undefined;
    try {
      connection = await NativeConnection.connect({ address });
      try {
        await connection.workflowService.describeNamespace({ namespace });
        return connection;
      } catch (error) {
        if (grpcCode(error) !== 5 /* NOT_FOUND */) throw error;
        if (!registered) {
          progress(`creating namespace ${namespace} (retention ${RETENTION_MS / 86_400_000} days)`);
          await connection.workflowService.registerNamespace({ namespace, workflowExecutionRetentionPeriod: msToTs(RETENTION_MS) });
          registered = true;
        }
        throw error;
      }
    } catch (error) {
      last = (error as Error).message;
      await connection?.close().catch(() => undefined);
      await sleep(500);
    }
  }
  throw new Error(`the Temporal server did not serve ${namespace} within 180 s (${last}); see ${logFile}`);
}

/**
 * Registers our search attributes, then waits until the frontend accepts a query on all of them. Both steps
 * go through the server's namespace and search-attribute caches, which a new namespace or attribute
 * reaches only on their next refresh (10 s and 60 s), so both are retried.
 */
async function ensureSearchAttributes(connection: NativeConnection, namespace: string): Promise<void> {
  const query = ALL_SEARCH_ATTRIBUTES.map((key) => `${key.name} = "probe"`).join(' AND ');
  const deadline = Date.now() + 150_000;
  let said = false;
  for (;;) {
    try {
      await registerSearchAttributes(connection, namespace);
      await connection.workflowService.countWorkflowExecutions({ namespace, query });
      return;
    } catch (error) {
      if (Date.now() > deadline) throw new Error(`search attributes not usable after 150 s: ${(error as Error).message}`);
      if (!said) progress(`waiting for the namespace and search attributes to reach the server's caches (up to a minute): ${(error as Error).message}`);
      said = true;
      await sleep(1_000);
    }
  }
}

async function waitForUi(url: string, child: ChildProcess, logFile: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`the UI server exited: ${tail(logFile)}`);
    try {
      const response = await fetch(url);
      if (response.ok) return;
    } catch {
      // not listening yet
    }
    await sleep(250);
  }
  throw new Error(`the UI server did not answer ${url} within 30 s; see ${logFile}`);
}

// ---------------------------------------------------------------------------------------------------------------
// Main

interface Running {
  readonly name: string;
  readonly child: ChildProcess;
  readonly stop: () => Promise<void>;
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const binaries = await ensureBinaries(options.uiPort !== undefined);
  const pgBin = await ensurePostgresInstalled();
  if (options.buildOnly) {
    progress(`binaries: ${dirname(binaries.server)}; PostgreSQL: ${pgBin}`);
    return;
  }
  for (const file of ['temporal-server.yaml', 'dynamicconfig.yaml', join('ui', 'llama-orch.yaml')]) {
    if (!existsSync(join(OPS_DIR, file))) throw new Error(`missing ${join(OPS_DIR, file)}: run from a llama-orch checkout`);
  }

  const paths: PgPaths = {
    bin: pgBin,
    data: join(options.dataDir, 'postgres'),
    socketDir: join(options.dataDir, 'run'),
    logs: join(options.dataDir, 'logs'),
  };
  mkdirSync(paths.logs, { recursive: true });
  checkShards(options);
  const busy = await busyPorts([options.pgPort, ...serverPorts(options), ...(options.uiPort === undefined ? [] : [options.uiPort])]);
  if (busy.length > 0) throw new Error(`port(s) ${busy.join(', ')} already in use on 127.0.0.1: is another cluster running? (see --port, --pg-port)`);

  const running: Running[] = [];
  let stopping = false;
  const stopAll = async (): Promise<void> => {
    stopping = true;
    for (const entry of [...running].reverse()) {
      progress(`stopping ${entry.name}`);
      await entry.stop();
    }
  };
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    progress(`${signal}: shutting down`);
    stopAll().then(() => process.exit(0), (error: unknown) => {
      progress(`shutdown failed: ${(error as Error).message}`);
      process.exit(1);
    });
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  try {
    const user = await pgUser(options.dataDir);
    await initPostgres(paths, user);
    progress(`starting PostgreSQL ${pgBin} on 127.0.0.1:${options.pgPort} ${user.note}, synchronous_commit=${options.syncCommit}`);
    const postgres = startPostgres(paths, user, options);
    running.push({
      name: 'PostgreSQL',
      child: postgres,
      // SIGINT is Postgres's fast shutdown; SIGKILL only if it hangs.
      stop: async () => {
        postgres.kill('SIGINT');
        await terminateChild(postgres, 30_000);
      },
    });
    await waitForPostgres(paths, options, postgres);
    await setupDatabases(paths, options, binaries);
    writeFileSync(join(options.dataDir, 'cluster.json'), `${JSON.stringify({ shards: options.shards, server: TEMPORAL_SERVER_VERSION }, null, 2)}\n`);

    const address = `127.0.0.1:${options.port}`;
    const serverLog = join(paths.logs, 'temporal-server.log');
    progress(`starting Temporal server ${TEMPORAL_SERVER_VERSION} on ${address} (${options.shards} history shards)`);
    const server = spawnLogged(binaries.server, ['--config-file', join(OPS_DIR, 'temporal-server.yaml'), '--allow-no-auth', 'start'],
      serverEnv(options, join(OPS_DIR, 'dynamicconfig.yaml')), serverLog);
    running.push({ name: 'Temporal server', child: server, stop: () => terminateChild(server, 20_000) });
    const connection = await waitForServer(address, options.namespace, server, serverLog);
    try {
      await ensureSearchAttributes(connection, options.namespace);
    } finally {
      await connection.close();
    }

    let uiUrl: string | undefined;
    if (binaries.uiServer && options.uiPort !== undefined) {
      const uiLog = join(paths.logs, 'temporal-ui.log');
      uiUrl = `http://127.0.0.1:${options.uiPort}`;
      const ui = spawnLogged(binaries.uiServer, ['--root', join(OPS_DIR, 'ui'), '--config', '.', '--env', 'llama-orch', 'start'], {
        ...process.env,
        TEMPORAL_ADDRESS: address,
        TEMPORAL_UI_IP: '127.0.0.1',
        TEMPORAL_UI_PORT: String(options.uiPort),
        TEMPORAL_DEFAULT_NAMESPACE: options.namespace,
      }, uiLog);
      running.push({ name: 'Temporal Web UI', child: ui, stop: () => terminateChild(ui, 5_000) });
      try {
        await waitForUi(uiUrl, ui, uiLog);
      } catch (error) {
        progress(`Web UI unavailable: ${(error as Error).message}`);
        uiUrl = undefined;
      }
    }

    progress(`ready: Temporal ${TEMPORAL_SERVER_VERSION} at ${address}, namespace ${options.namespace}`);
    if (uiUrl) progress(`Web UI: ${uiUrl}`);
    if (options.metricsPort !== undefined) progress(`metrics: http://127.0.0.1:${options.metricsPort}/metrics`);
    progress(`PostgreSQL: postgres://${DB_USER}:${DB_PASSWORD}@127.0.0.1:${options.pgPort}/temporal; logs: ${paths.logs}`);
    progress('Ctrl-C (or SIGTERM to this process) stops the server and Postgres');
    process.stdout.write(`TEMPORAL_ADDRESS=${address}\n`);

    // Fail fast: any of them exiting on its own takes the others down, so a process manager sees it.
    for (const entry of running) {
      entry.child.once('exit', (code, signal) => {
        if (stopping) return;
        progress(`${entry.name} exited on its own (${code ?? signal}); stopping the rest`);
        void stopAll().finally(() => process.exit(1));
      });
    }
  } catch (error) {
    if (!stopping) await stopAll();
    throw error;
  }
}

function checkShards(options: Options): void {
  const file = join(options.dataDir, 'cluster.json');
  if (!existsSync(file)) return;
  const recorded = (JSON.parse(readFileSync(file, 'utf8')) as { shards?: number }).shards;
  if (recorded !== undefined && recorded !== options.shards) {
    throw new Error(`${options.dataDir} was created with ${recorded} history shards, which cannot change: use --shards ${recorded}, or another --data-dir`);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Process helpers

function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

function findOnPath(name: string): string | undefined {
  for (const directory of (process.env['PATH'] ?? '').split(delimiter)) {
    if (directory && existsSync(join(directory, name))) return join(directory, name);
  }
  return undefined;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolveSleep) => setTimeout(resolveSleep, ms));
}

/** Like runCommand, but the command's stdout goes to our stderr, keeping stdout for TEMPORAL_ADDRESS. */
function runToStderr(command: string, args: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<void> {
  return new Promise((resolveRun, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 2, 2], env });
    child.once('error', reject);
    child.once('exit', (code, signal) => (code === 0 ? resolveRun() : reject(new Error(`${command} ${args.join(' ')} exited with ${code ?? signal}`))));
  });
}

/** Runs a command with its output appended to `logFile`; a failure carries the end of that output. */
function runLogged(command: string, args: readonly string[], logFile: string): Promise<void> {
  return new Promise((resolveRun, reject) => {
    let output = '';
    const log = createWriteStream(logFile, { flags: 'a' });
    log.write(`\n$ ${command} ${args.join(' ')}\n`);
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const collect = (chunk: Buffer): void => {
      output = (output + chunk.toString()).slice(-4_000);
      log.write(chunk);
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    child.once('error', reject);
    child.once('close', (code, signal) => {
      log.end();
      if (code === 0) resolveRun();
      else reject(new Error(`${command} ${args.join(' ')} exited with ${code ?? signal}:\n${output.trim().split('\n').slice(-8).join('\n')}`));
    });
  });
}

function capture(command: string, args: readonly string[]): Promise<string> {
  return new Promise((resolveRun, reject) => {
    let stdout = '';
    let stderr = '';
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('error', reject);
    child.once('close', (code) => (code === 0 ? resolveRun(stdout) : reject(new Error(stderr.trim() || `${command} exited with ${code}`))));
  });
}

/** A long-running child whose output goes to `logFile`. */
function spawnLogged(command: string, args: readonly string[], env: NodeJS.ProcessEnv, logFile: string): ChildProcess {
  const log = createWriteStream(logFile, { flags: 'a' });
  log.write(`\n$ ${command} ${args.join(' ')}  (${new Date().toISOString()})\n`);
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
  child.stdout?.pipe(log, { end: false });
  child.stderr?.pipe(log, { end: false });
  child.once('error', (error) => progress(`${command}: ${error.message}`));
  return child;
}

function tail(file: string, lines = 15): string {
  try {
    return `\n${readFileSync(file, 'utf8').trim().split('\n').slice(-lines).join('\n')}\n(see ${file})`;
  } catch {
    return `(no log at ${file})`;
  }
}

function busyPorts(ports: readonly number[]): Promise<number[]> {
  return Promise.all(
    ports.map(
      (port) =>
        new Promise<number | undefined>((resolvePort) => {
          const probe = createServer();
          probe.once('error', () => resolvePort(port));
          probe.listen(port, '127.0.0.1', () => probe.close(() => resolvePort(undefined)));
        }),
    ),
  ).then((results) => results.filter((port): port is number => port !== undefined));
}

if (require.main === module) {
  main().catch((error: unknown) => {
    progress(error instanceof Error ? error.message : String(error));
    process.exit(1);
  });
}
