import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { request } from 'undici';
import { stringify } from 'yaml';
import { boundToParent } from '../../platform/parent-death';
import { freePort } from '../../cli/free-port';
import { waitFor } from './sse-client';

const START = resolve(__dirname, '..', '..', 'dist', 'cli', 'start.js');

export interface NpmStartOptions {
  /** Temporal for the stack (the run's dev server, or a cluster); absent: npm start's own embedded server. */
  readonly temporalAddress?: string | undefined;
  /** The mock pool's model ref and engine settings. */
  readonly model: string;
  readonly engineRuntime?: Record<string, unknown>;
  readonly gatewayProcesses?: number;
  /** Each JSON log line the stack prints (LOG_LEVEL info); without it stdout is ignored. */
  readonly onLogLine?: (line: Record<string, unknown>) => void;
  readonly readyTimeoutMs?: number;
  /** More pools beside the mock one (each with its own id), and the model catalog and dev section they need. */
  readonly extraPools?: readonly Record<string, unknown>[];
  readonly models?: readonly Record<string, unknown>[];
  readonly dev?: Record<string, unknown>;
}

export interface NpmStartStack {
  readonly child: ChildProcess;
  readonly apiUrl: string;
  readonly poolId: string;
  readonly configPath: string;
  readonly dataDir: string;
  /** Spawns `npm start` again on the same config and data dir (after a crash) and waits for the pool. */
  restart(): Promise<ChildProcess>;
}

/**
 * `npm start` as a user runs it (the built `dist/cli/start.js`, its own process tree), on a fresh data dir
 * with one mock pool and auth off; resolves once the pool reports Ready through the API.
 */
export async function startNpmStack(options: NpmStartOptions): Promise<NpmStartStack> {
  const directory = mkdtempSync(join(tmpdir(), 'llama-orch-npm-start-'));
  const port = await freePort();
  const apiUrl = `http://127.0.0.1:${port}`;
  const poolId = `ns-${randomUUID().slice(0, 8)}`;
  const dataDir = join(directory, 'data');
  const configPath = join(directory, 'config.yaml');
  const embedded = options.temporalAddress === undefined ? { embedded: { port: await freePort(), ui_port: await freePort() } } : undefined;
  writeFileSync(
    configPath,
    stringify({
      data_dir: dataDir,
      auth: { mode: 'disabled' },
      ...(embedded ? { temporal: embedded } : {}),
      gateway: { host: '127.0.0.1', port, processes: options.gatewayProcesses ?? 1 },
      ...(options.models ? { models: options.models } : {}),
      ...(options.dev ? { dev: options.dev } : {}),
      pools: [
        { id: poolId, engine: 'llamacpp', model: options.model, ctx: 2048, devices: [0], engine_runtime: { kind: 'mock', slots: 2, ...options.engineRuntime } },
        ...(options.extraPools ?? []),
      ],
    }),
  );
  const launch = async (): Promise<ChildProcess> => {
    const child = spawnStart(configPath, options);
    const poolIds = [poolId, ...(options.extraPools ?? []).map((pool) => String(pool['id']))];
    await waitFor(async () => (await Promise.all(poolIds.map((id) => poolReady(apiUrl, id)))).every(Boolean), options.readyTimeoutMs ?? 60_000, `npm start (pools ${poolIds.join(', ')}) to serve`);
    return child;
  };
  return { child: await launch(), apiUrl, poolId, configPath, dataDir, restart: launch };
}

function spawnStart(configPath: string, options: NpmStartOptions): ChildProcess {
  const env: NodeJS.ProcessEnv = { ...process.env, LOG_LEVEL: options.onLogLine ? 'info' : 'warn' };
  if (options.temporalAddress === undefined) delete env['TEMPORAL_ADDRESS'];
  else env['TEMPORAL_ADDRESS'] = options.temporalAddress;
  // Bound to the test process: a test run that is killed stops its stacks too.
  const command = boundToParent(process.execPath, [START, '--config', configPath], 'SIGTERM');
  const child = spawn(command.command, command.args, { stdio: ['ignore', options.onLogLine ? 'pipe' : 'ignore', 'inherit'], env });
  const onLogLine = options.onLogLine;
  if (onLogLine) {
    let buffered = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      const parts = buffered.split('\n');
      buffered = parts.pop() ?? '';
      for (const line of parts) {
        try {
          onLogLine(JSON.parse(line) as Record<string, unknown>);
        } catch {
          // not a log line
        }
      }
    });
  }
  return child;
}

export async function poolReady(apiUrl: string, poolId: string): Promise<boolean> {
  try {
    const response = await request(`${apiUrl}/v1/pools/${poolId}/health`, { reset: true });
    return response.statusCode === 200 && ((await response.body.json()) as { ready?: boolean }).ready === true;
  } catch {
    return false;
  }
}

/** SIGTERM, then resolves once the process exited (at once if it already had); its exit code, or null. */
export function stopProcess(child: ChildProcess | undefined): Promise<number | null> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child?.exitCode ?? null);
  const exited = new Promise<number | null>((resolveExit) => child.once('exit', (code) => resolveExit(code)));
  child.kill('SIGTERM');
  return exited;
}
