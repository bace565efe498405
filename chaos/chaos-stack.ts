import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { stringify } from 'yaml';
import { freePort } from '../cli/free-port';
import type { SupervisedProcessStatus } from '../core/supervised-process';
import { processesMentioning } from './process-table';

const START = resolve(__dirname, '..', 'cli', 'start.js');

export interface ChaosStackOptions {
  readonly slots: number;
  readonly interTokenMs: number;
}

/**
 * `npm start` on the default layout (its own embedded Temporal server) with one mock pool, on a fresh data
 * dir of its own; the chaos run plays the outer supervisor and starts it again after a kill.
 */
export class ChaosStack {
  readonly apiUrl: string;
  readonly model = 'mock:chaos';
  readonly poolId = 'chaos';
  private readonly directory: string;
  private readonly configPath: string;
  private main: ChildProcess | undefined;

  private constructor(port: number, directory: string) {
    this.apiUrl = `http://127.0.0.1:${port}`;
    this.directory = directory;
    this.configPath = join(directory, 'config.yaml');
  }

  static async create(options: ChaosStackOptions): Promise<ChaosStack> {
    const directory = mkdtempSync(join(tmpdir(), 'llama-orch-chaos-'));
    const stack = new ChaosStack(await freePort(), directory);
    writeFileSync(
      stack.configPath,
      stringify({
        data_dir: join(directory, 'data'),
        auth: { mode: 'disabled' },
        temporal: { embedded: { port: await freePort(), ui_port: await freePort() } },
        gateway: { host: '127.0.0.1', port: Number(new URL(stack.apiUrl).port) },
        pools: [{ id: stack.poolId, engine: 'llamacpp', model: stack.model, ctx: 2048, devices: [0], engine_runtime: { kind: 'mock', slots: options.slots, ttft_ms: 5, inter_token_ms: options.interTokenMs } }],
      }),
    );
    return stack;
  }

  /** Starts `npm start`'s process and resolves once the pool is Ready through the API. */
  async start(timeoutMs = 90_000): Promise<void> {
    const env: NodeJS.ProcessEnv = { ...process.env, LOG_LEVEL: 'error' };
    delete env['TEMPORAL_ADDRESS'];
    this.main = spawn(process.execPath, [START, '--config', this.configPath], { stdio: ['ignore', 'ignore', 'ignore'], env });
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (this.main.exitCode !== null) throw new Error(`npm start exited with ${this.main.exitCode}`);
      if (await this.poolReady()) return;
      await sleep(100);
    }
    throw new Error(`npm start did not serve within ${timeoutMs} ms`);
  }

  mainPid(): number {
    return this.main?.pid ?? 0;
  }

  async processes(): Promise<SupervisedProcessStatus[]> {
    try {
      const response = await request(`${this.apiUrl}/health`, { reset: true });
      return ((await response.body.json()) as { processes: SupervisedProcessStatus[] }).processes;
    } catch {
      return [];
    }
  }

  /** Every live process whose command line names this stack's folder (its config or its data dir). */
  leftovers(): number[] {
    return processesMentioning(this.directory);
  }

  /** SIGTERM and wait; resolves with the exit code and how long the stop took. */
  async stop(): Promise<{ code: number | null; ms: number }> {
    const main = this.main;
    if (!main || main.exitCode !== null || main.signalCode !== null) return { code: main?.exitCode ?? null, ms: 0 };
    const startedAt = performance.now();
    const exited = new Promise<number | null>((resolveExit) => main.once('exit', (code) => resolveExit(code)));
    main.kill('SIGTERM');
    return { code: await exited, ms: performance.now() - startedAt };
  }

  remove(): void {
    rmSync(this.directory, { recursive: true, force: true });
  }

  private async poolReady(): Promise<boolean> {
    try {
      const response = await request(`${this.apiUrl}/v1/pools/${this.poolId}/health`, { reset: true });
      return response.statusCode === 200 && ((await response.body.json()) as { ready?: boolean }).ready === true;
    } catch {
      return false;
    }
  }
}
