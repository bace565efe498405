import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { request, type Agent, type Dispatcher } from 'undici';
import { stringify } from 'yaml';
import { freePort } from '../cli/free-port';
import { postJson, timeSseTokens, type StreamTiming } from './sse-timing';
import { ensureTemporalBinary } from '../cli/temporal-binary';
import { startDevServer, type DevServer, type DevServerTuning } from '../cli/temporal-dev-server';

/** TEMPORAL_ADDRESS when set, else a fresh dev server (file-backed as `npm start` runs it; BENCH_TEMPORAL_IN_MEMORY=1 for memory). */
export async function benchTemporal(
  workDir: string,
  /** A dev server with these settings, whatever TEMPORAL_ADDRESS says (bench/temporal-sweep.ts). */
  variant?: { readonly tuning: DevServerTuning; readonly persist: boolean },
): Promise<{ address: string; devServer: DevServer | undefined }> {
  const existing = process.env['TEMPORAL_ADDRESS'];
  if (existing && variant === undefined) return { address: existing, devServer: undefined };
  const devServer = await startDevServer({
    tuning: variant?.tuning,
    binary: await ensureTemporalBinary(),
    dataDir: workDir,
    port: 0,
    uiPort: undefined,
    namespace: 'default',
    persist: variant?.persist ?? process.env['BENCH_TEMPORAL_IN_MEMORY'] !== '1',
  });
  return { address: devServer.address, devServer };
}

/** Waits until the pool reports a Ready replica through the gateway (auth off in benchmark configs). */
export async function waitForPool(apiUrl: string, dispatcher: Agent, poolId: string): Promise<void> {
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    try {
      const response = await request(`${apiUrl}/v1/pools/${poolId}/health`, { dispatcher });
      const health = (await response.body.json()) as { ready?: boolean };
      if (health.ready) return;
    } catch {
      // not up yet
    }
    await new Promise((resolveDelay) => setTimeout(resolveDelay, 250));
  }
  throw new Error(`pool ${poolId} did not become ready`);
}

export interface BenchOrchestrator {
  readonly apiUrl: string;
  readonly child: ChildProcess;
}

/**
 * `npm start`'s process tree (gateway + workflow worker + one pool-worker child) for one pool, on the given
 * Temporal. API keys are off: the benchmarks measure the relay and the queue, not key checks.
 */
export async function startBenchOrchestrator(
  workDir: string,
  temporalAddress: string,
  pool: Record<string, unknown>,
  /** Other top-level config sections (e.g. `placement: { fast_start: false }`); each stack gets its own config file. */
  extraConfig: Record<string, unknown> = {},
): Promise<BenchOrchestrator> {
  const gatewayPort = await freePort();
  const configPath = join(workDir, `bench-${String(pool['id'])}.yaml`);
  // A data dir per stack: one `npm start` per data dir (cli/stack-lock.ts), and benchmarks run two side by side.
  writeFileSync(configPath, stringify({ data_dir: join(workDir, String(pool['id'])), auth: { mode: 'disabled' }, gateway: { host: '127.0.0.1', port: gatewayPort }, pools: [pool], ...extraConfig }));
  // BENCH_STACK_NODE_FLAGS, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`, profiles the gateway process.
  const nodeFlags = (process.env['BENCH_STACK_NODE_FLAGS'] ?? '').split(' ').filter((flag) => flag.length > 0);
  const child = spawn(process.execPath, [...nodeFlags, join(resolve(__dirname, '..'), 'cli/start.js'), '--config', configPath], {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, TEMPORAL_ADDRESS: temporalAddress, LOG_LEVEL: 'warn' },
  });
  return { apiUrl: `http://127.0.0.1:${gatewayPort}`, child };
}

export interface OrchestratedRun {
  readonly timing: StreamTiming;
  /** From the first byte of the POST to the 202. */
  readonly admissionMs: number;
}

/** Submits one task through the public API and times its stream from the moment the POST started. */
export async function runOrchestratedTask(
  dispatcher: Dispatcher,
  apiUrl: string,
  task: { readonly model: string; readonly ctx: number; readonly seed: number; readonly prompt: string; readonly maxTokens: number },
): Promise<OrchestratedRun> {
  const taskId = randomUUID();
  const startedAt = performance.now();
  const admitted = await postJson(dispatcher, `${apiUrl}/v1/tasks`, {
    task_id: taskId,
    session_id: randomUUID(),
    workload: 'completion',
    model_ref: task.model,
    engine: 'llamacpp',
    ctx: task.ctx,
    priority: 'interactive',
    seed: task.seed,
    prompt: task.prompt,
    max_tokens: task.maxTokens,
    deadline_ms: 60_000,
  });
  if (admitted.status !== 202) throw new Error(`admission answered ${admitted.status}: ${admitted.text}`);
  const admissionMs = performance.now() - startedAt;
  const response = await request(`${apiUrl}/v1/tasks/${taskId}/stream`, { dispatcher });
  return { timing: await timeSseTokens(response.body, startedAt, (event) => event === 'token'), admissionMs };
}
