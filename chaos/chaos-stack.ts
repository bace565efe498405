import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { stringify } from 'yaml';
import { boundToParent } from '../platform/parent-death';
import { freePort } from '../cli/free-port';
import type { SupervisedProcessStatus } from '../core/supervised-process';
import { commandLineOf, descendantsOf, processesMentioning } from './process-table';

/** The built `npm start` entry: beside this file in dist/, or in dist/ when this runs from source (jest). */
const START = [resolve(__dirname, '..', 'cli', 'start.js'), resolve(__dirname, '..', 'dist', 'cli', 'start.js')].find((path) => existsSync(path)) ?? 'dist/cli/start.js';

export interface ChaosStackOptions {
  /** mock: the test double inside the pool worker; llama: a real llama-server with the tiny model (the default stack's smollm2 pool). */
  readonly engine: 'mock' | 'llama';
  readonly slots: number;
  readonly interTokenMs: number;
  /**
   * single: npm start's default, one process with the gateway and the workflow worker. split: two gateway
   * processes on the port and a workflow worker of its own, so each can be killed alone.
   */
  readonly layout: 'single' | 'split';
}

/**
 * A fresh connection each time, answered within 2 s or not at all: a connection the cluster primary handed
 * to a gateway process just as it was killed is never answered, and must count as "not back yet".
 */
const PROBE = { reset: true, headersTimeout: 2_000, bodyTimeout: 2_000 } as const;

const TINY_MODEL = { ref: 'smollm2-135m-instruct-q4_1', source: { kind: 'pypi-smollm2' } } as const;

/**
 * The engine restart policy of the chaos pool: the defaults (OC-POOL-3011) but a 10 s breaker window
 * instead of 60 s. Kills closer together than the window are a crash storm by design (backoff, then the
 * breaker); the run spaces engine kills by the window, and a shorter one keeps 20 kills to minutes.
 */
export const CHAOS_ENGINE_RESTART = { initial_backoff_ms: 1_000, max_backoff_ms: 60_000, breaker_failures: 5, breaker_window_ms: 10_000, breaker_cooldown_ms: 300_000 } as const;

/**
 * `npm start` (its own embedded Temporal server) with one pool, on a fresh data dir of its own; the chaos
 * run plays the outer supervisor and starts it again after a kill.
 */
export class ChaosStack {
  readonly apiUrl: string;
  readonly model: string;
  readonly poolId = 'chaos';
  private readonly directory: string;
  private readonly configPath: string;
  private main: ChildProcess | undefined;

  private constructor(port: number, directory: string, model: string) {
    this.model = model;
    this.apiUrl = `http://127.0.0.1:${port}`;
    this.directory = directory;
    this.configPath = join(directory, 'config.yaml');
  }

  static async create(options: ChaosStackOptions): Promise<ChaosStack> {
    const directory = mkdtempSync(join(tmpdir(), 'llama-orch-chaos-'));
    const model = options.engine === 'llama' ? TINY_MODEL.ref : 'mock:chaos';
    const stack = new ChaosStack(await freePort(), directory, model);
    const runtime =
      options.engine === 'llama' ? { kind: 'llama-server', slots: options.slots, restart: CHAOS_ENGINE_RESTART } : { kind: 'mock', slots: options.slots, ttft_ms: 5, inter_token_ms: options.interTokenMs };
    writeFileSync(
      stack.configPath,
      stringify({
        data_dir: join(directory, 'data'),
        auth: { mode: 'disabled' },
        temporal: { embedded: { port: await freePort(), ui_port: await freePort() } },
        gateway: { host: '127.0.0.1', port: Number(new URL(stack.apiUrl).port), processes: options.layout === 'split' ? 2 : 1 },
        workflow_worker: { processes: options.layout === 'split' ? 1 : 0 },
        ...(options.engine === 'llama' ? { dev: { allow_cpu_inference: true }, models: [TINY_MODEL] } : {}),
        pools: [{ id: stack.poolId, engine: 'llamacpp', model: stack.model, ctx: 2048, devices: [0], engine_runtime: runtime }],
      }),
    );
    return stack;
  }

  /** Starts `npm start`'s process and resolves once the pool is Ready through the API. */
  async start(timeoutMs = 90_000): Promise<void> {
    const env: NodeJS.ProcessEnv = { ...process.env, LOG_LEVEL: process.env['CHAOS_STACK_STDERR'] === undefined ? 'error' : (process.env['CHAOS_STACK_LOG_LEVEL'] ?? 'warn') };
    delete env['TEMPORAL_ADDRESS'];
    // Bound to this run: a chaos run that is interrupted stops its stack too.
    const command = boundToParent(process.execPath, [START, '--config', this.configPath], 'SIGTERM');
    // CHAOS_STACK_STDERR=<file>: keep the stack's whole output there, to see why a piece did not come back.
    const keep = process.env['CHAOS_STACK_STDERR'];
    this.main = spawn(command.command, command.args, { stdio: ['ignore', keep === undefined ? 'ignore' : 'pipe', 'pipe'], env });
    if (keep !== undefined) this.main.stdout?.on('data', (chunk: Buffer) => appendFileSync(keep, chunk));
    // The last of its stderr, to say why when it exits before serving.
    let stderrTail = '';
    this.main.stderr?.on('data', (chunk: Buffer) => {
      stderrTail = (stderrTail + chunk.toString('utf8')).slice(-2_000);
      if (keep !== undefined) appendFileSync(keep, chunk);
    });
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (this.main.exitCode !== null) throw new Error(`npm start exited with ${this.main.exitCode}: ${stderrTail}`);
      if (await this.poolReady()) return;
      await sleep(100);
    }
    throw new Error(`npm start did not serve within ${timeoutMs} ms`);
  }

  /** The pool's llama-server: the child of its pool worker that runs it, if any. */
  async enginePid(): Promise<number | undefined> {
    const worker = (await this.processes()).find((entry) => entry.role === 'pool-worker');
    return descendantsOf(worker?.pid ?? 0).find((pid) => commandLineOf(pid).includes('llama-server'));
  }

  mainPid(): number {
    return this.main?.pid ?? 0;
  }

  async processes(): Promise<SupervisedProcessStatus[]> {
    try {
      const response = await request(`${this.apiUrl}/health`, PROBE);
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

  async poolReady(): Promise<boolean> {
    try {
      const response = await request(`${this.apiUrl}/v1/pools/${this.poolId}/health`, PROBE);
      return response.statusCode === 200 && ((await response.body.json()) as { ready?: boolean }).ready === true;
    } catch {
      return false;
    }
  }
}
