import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Agent } from 'undici';
import { stringify } from 'yaml';
import { freePort } from '../cli/free-port';
import { parseConfig } from '../core/config';
import { benchTemporal, runOrchestratedTask, waitForPool } from './bench-stack';
import { stopProcess } from './bench-processes';
import { OrchApiError, OrchClient } from '../clients/typescript/src';
import { percentile } from './stats';

/**
 * Priority inversion under load (ORCH-3051): interactive tasks arriving at a steady rate, timed from
 * admission to first token, once on an idle pool and once behind a flood of queued batch tasks, in
 * one run against a gateway, a workflow worker and a pool worker in separate processes (mock engine).
 * Interactive is dispatched before batch, so the flood should cost an interactive task at most the
 * wait for a slot to free, not the batch backlog. Figures are printed, never asserted.
 */
const BATCH_TASKS = Number(process.env['BENCH_BATCH_TASKS'] ?? 200);
const BATCH_TOKENS = Number(process.env['BENCH_BATCH_TOKENS'] ?? 32);
const INTERACTIVE_PER_SECOND = Number(process.env['BENCH_INTERACTIVE_RPS'] ?? 4);
const INTERACTIVE_SECONDS = Number(process.env['BENCH_INTERACTIVE_SECONDS'] ?? 10);
const INTERACTIVE_TOKENS = 8;
const SLOTS = 4;
const ENGINE_TTFT_MS = 20;
const ENGINE_INTER_TOKEN_MS = 10;
const dist = resolve(__dirname, '..');

const POOL = {
  id: 'mixed',
  engine: 'llamacpp',
  model: 'mock:mixed',
  ctx: 4096,
  devices: [0],
  queue: { capacity: 10_000 },
  engine_runtime: { kind: 'mock', ttft_ms: ENGINE_TTFT_MS, inter_token_ms: ENGINE_INTER_TOKEN_MS, slots: SLOTS },
} as const;

async function main(): Promise<void> {
  const workDir = mkdtempSync(join(tmpdir(), 'llama-orch-bench-inversion-'));
  const { address: temporalAddress, devServer } = await benchTemporal(workDir);
  const gatewayPort = await freePort();
  const configPath = join(workDir, 'bench.yaml');
  const config = {
    data_dir: workDir,
    auth: { mode: 'disabled' },
    quotas: { default: { max_concurrent_jobs: null, max_memory_bytes: null } },
    gateway: { host: '127.0.0.1', port: gatewayPort },
    pools: [POOL],
  };
  writeFileSync(configPath, stringify(config));
  // The SLO the figures are read against: the config's default interactive p95 TTFT.
  const ttftSloMs = parseConfig(config).config.slo.interactive.ttft_p95_ms;
  const env = { ...process.env, TEMPORAL_ADDRESS: temporalAddress, LOG_LEVEL: 'error', ORCH_INTERNAL_TOKEN: randomUUID() };
  const launch = (script: string, args: readonly string[] = []): ChildProcess =>
    spawn(process.execPath, [join(dist, script), '--config', configPath, ...args], { stdio: ['ignore', 'ignore', 'inherit'], env });
  const children = [launch('api/gateway-main.js'), launch('workflows/workflow-worker-main.js'), launch('gpu-workers/pool-worker-main.js', ['--pool', POOL.id])];
  const apiUrl = `http://127.0.0.1:${gatewayPort}`;
  const dispatcher = new Agent({ connections: 256, keepAliveTimeout: 30_000 });
  try {
    await waitForPool(apiUrl, dispatcher, POOL.id);
    await interactiveArrivals(dispatcher, apiUrl, 1, 4); // warm the path

    const idle = await interactiveArrivals(dispatcher, apiUrl, INTERACTIVE_PER_SECOND, INTERACTIVE_SECONDS);

    const floodStarted = performance.now();
    const refused = await floodBatch(apiUrl);
    const floodMs = performance.now() - floodStarted;
    const flooded = await interactiveArrivals(dispatcher, apiUrl, INTERACTIVE_PER_SECOND, INTERACTIVE_SECONDS);

    const backlogMs = (BATCH_TASKS * (ENGINE_TTFT_MS + BATCH_TOKENS * ENGINE_INTER_TOKEN_MS)) / SLOTS;
    const row = (name: string, fraction: number): string => {
      const without = percentile(idle, fraction);
      const withFlood = percentile(flooded, fraction);
      return `  ${name.padEnd(4)} ${fmt(without)} ms   ${fmt(withFlood)} ms   ${(withFlood / without).toFixed(2).padStart(6)}×`;
    };
    process.stdout.write(
      [
        '',
        `llama-orch priority-inversion benchmark (ORCH-3051) — mock engine (${SLOTS} slots, TTFT ${ENGINE_TTFT_MS} ms, ${ENGINE_INTER_TOKEN_MS} ms/token), Temporal dev server, separate processes`,
        `interactive: ${INTERACTIVE_TOKENS}-token tasks at ${INTERACTIVE_PER_SECOND}/s for ${INTERACTIVE_SECONDS} s (open loop), timed admission → first token`,
        `flood: ${BATCH_TASKS} batch tasks of ${BATCH_TOKENS} tokens submitted in ${(floodMs / 1000).toFixed(1)} s (${refused} refused), ~${(backlogMs / 1000).toFixed(0)} s of work for the slots`,
        '            no flood       batch flood     ratio',
        row('p50', 0.5),
        row('p95', 0.95),
        row('p99', 0.99),
        `  n    ${String(idle.length).padStart(7)}        ${String(flooded.length).padStart(7)}`,
        `interactive SLO (slo.interactive.ttft_p95_ms default): ${ttftSloMs} ms; p95 under the flood is ${((percentile(flooded, 0.95) / ttftSloMs) * 100).toFixed(0)}% of it`,
        '',
      ].join('\n'),
    );
  } finally {
    await dispatcher.close();
    await Promise.all(children.map((child) => stopProcess(child)));
    await devServer?.stop();
  }
}

/** Starts one interactive task every 1/rate s (not waiting for the previous) and returns each one's admission → first token. */
async function interactiveArrivals(dispatcher: Agent, apiUrl: string, perSecond: number, seconds: number): Promise<number[]> {
  const runs: Promise<number>[] = [];
  const count = Math.round(perSecond * seconds);
  for (let index = 0; index < count; index += 1) {
    runs.push(runOrchestratedTask(dispatcher, apiUrl, { model: POOL.model, ctx: 2048, seed: index, prompt: 'interactive', maxTokens: INTERACTIVE_TOKENS }).then((run) => run.timing.ttftMs));
    await new Promise((resolveDelay) => setTimeout(resolveDelay, 1000 / perSecond));
  }
  return Promise.all(runs);
}

/** Queues the batch flood as fast as 16 clients can submit it (with the typed client); its streams are never read. */
async function floodBatch(apiUrl: string): Promise<number> {
  const client = new OrchClient({ baseUrl: apiUrl });
  let next = 0;
  let refused = 0;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (next < BATCH_TASKS) {
        next += 1;
        try {
          await client.submit({
            task_id: randomUUID(),
            session_id: randomUUID(),
            workload: 'completion',
            model_ref: POOL.model,
            engine: 'llamacpp',
            ctx: 2048,
            priority: 'batch',
            prompt: 'batch',
            max_tokens: BATCH_TOKENS,
            deadline_ms: 3_600_000,
          });
        } catch (error) {
          if (!(error instanceof OrchApiError)) throw error;
          refused += 1;
        }
      }
    }),
  );
  return refused;
}

function fmt(value: number): string {
  return value.toFixed(1).padStart(7);
}

main().catch((error: unknown) => {
  process.stderr.write(`benchmark failed: ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
