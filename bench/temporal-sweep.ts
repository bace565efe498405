import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Agent } from 'undici';
import { DEV_SERVER_TUNING, type DevServerTuning } from '../cli/temporal-dev-server';
import { benchTemporal, runOrchestratedTask, startBenchOrchestrator, waitForPool } from './bench-stack';
import { startListeningProcess, stopProcess } from './bench-processes';
import { median, percentile } from './stats';

/**
 * Issue 10 item 1: each dev-server setting's effect on the durable path, side by side in one run. Every
 * variant gets a fresh dev server and the same orchestrator with fast start OFF (so every task takes
 * the full schedule: start, workflow task, transfer load, match, activity start), the same mock engine,
 * and the same load: BENCH_CONCURRENCY (32) clients × BENCH_ROUNDS tasks. Variants run in order, then
 * again in reverse, so drift in machine load hits them alike; both passes are pooled.
 */
const CONCURRENCY = Number(process.env['BENCH_CONCURRENCY'] ?? 32);
const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 4);
const TOKENS = 16;
const dist = resolve(__dirname, '..');

interface Variant {
  readonly name: string;
  readonly tuning: DevServerTuning;
  readonly persist: boolean;
}

const VARIANTS: readonly Variant[] = [
  { name: 'CLI defaults: transfer 20/s, sync OFF', tuning: { transferPollRps: undefined, sqliteSynchronous: 'OFF' }, persist: true },
  { name: 'transfer 20/s, sync NORMAL', tuning: { transferPollRps: undefined, sqliteSynchronous: 'NORMAL' }, persist: true },
  { name: 'transfer 1000/s, sync FULL', tuning: { transferPollRps: 1_000, sqliteSynchronous: 'FULL' }, persist: true },
  { name: 'transfer 1000/s, sync NORMAL (chosen)', tuning: DEV_SERVER_TUNING, persist: true },
  { name: 'transfer 1000/s, sync OFF', tuning: { transferPollRps: 1_000, sqliteSynchronous: 'OFF' }, persist: true },
  { name: 'transfer 1000/s, in memory (tests)', tuning: DEV_SERVER_TUNING, persist: false },
];

interface Sample {
  readonly ttftMs: number;
  readonly admissionMs: number;
}

async function main(): Promise<void> {
  const engine = await startListeningProcess(join(dist, 'gpu-workers/engines/mock-llamacpp/mock-engine-main.js'), ['--port', '0', '--slots', '128', '--ttft-ms', '20', '--inter-token-ms', '2']);
  const samples = new Map<string, { samples: Sample[]; seconds: number; tasks: number }>();
  try {
    for (const variant of [...VARIANTS, ...[...VARIANTS].reverse()]) {
      const measured = await measure(variant, engine.url);
      const entry = samples.get(variant.name) ?? { samples: [], seconds: 0, tasks: 0 };
      entry.samples.push(...measured.samples);
      entry.seconds += measured.seconds;
      entry.tasks += measured.samples.length;
      samples.set(variant.name, entry);
      process.stderr.write(`  ${variant.name}: ${measured.samples.length} tasks\n`);
    }
  } finally {
    await stopProcess(engine.child);
  }
  const baseline = samples.get(VARIANTS[0]?.name ?? '');
  const rows = VARIANTS.map((variant) => {
    const entry = samples.get(variant.name);
    if (!entry) return '';
    const ttft = entry.samples.map((sample) => sample.ttftMs);
    const admission = entry.samples.map((sample) => sample.admissionMs);
    const rate = entry.tasks / entry.seconds;
    const vsBaseline = baseline ? median(ttft) / median(baseline.samples.map((sample) => sample.ttftMs)) : Number.NaN;
    return `${variant.name.padEnd(40)} ${fmt(median(ttft))} ${fmt(percentile(ttft, 0.99))}   ${fmt(median(admission))} ${fmt(percentile(admission, 0.99))}   ${rate.toFixed(1).padStart(6)}   ${vsBaseline.toFixed(2)}`;
  });
  process.stdout.write(
    [
      '',
      `Temporal dev server settings, durable path only (fast start off), mock engine (TTFT 20 ms), ${CONCURRENCY} concurrent clients, ${TOKENS} tokens/task`,
      `${'variant'.padEnd(40)} TTFT p50    p99   202 p50     p99   tasks/s   TTFT p50 vs defaults`,
      ...rows,
      '',
    ].join('\n'),
  );
}

async function measure(variant: Variant, engineUrl: string): Promise<{ samples: Sample[]; seconds: number }> {
  const workDir = mkdtempSync(join(tmpdir(), 'llama-orch-sweep-'));
  const { address, devServer } = await benchTemporal(workDir, { tuning: variant.tuning, persist: variant.persist });
  const { apiUrl, child } = await startBenchOrchestrator(
    workDir,
    address,
    { id: 'sweep', engine: 'llamacpp', model: 'mock:sweep', ctx: 4096, devices: [0], engine_runtime: { kind: 'external', url: engineUrl } },
    { placement: { fast_start: false } },
  );
  const dispatcher = new Agent({ connections: 256, keepAliveTimeout: 30_000 });
  try {
    await waitForPool(apiUrl, dispatcher, 'sweep');
    const run = (seed: number) => runOrchestratedTask(dispatcher, apiUrl, { model: 'mock:sweep', ctx: 2048, seed, prompt: 'Sweep prompt', maxTokens: TOKENS });
    for (let warm = 0; warm < 8; warm += 1) await run(warm);
    const samples: Sample[] = [];
    const startedAt = performance.now();
    let seed = 100;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        for (let round = 0; round < ROUNDS; round += 1) {
          const result = await run(seed++);
          samples.push({ ttftMs: result.timing.ttftMs, admissionMs: result.admissionMs });
        }
      }),
    );
    return { samples, seconds: (performance.now() - startedAt) / 1000 };
  } finally {
    await dispatcher.close();
    await stopProcess(child);
    await devServer?.stop();
  }
}

function fmt(value: number): string {
  return value.toFixed(1).padStart(7);
}

main().catch((error: unknown) => {
  process.stderr.write(`sweep failed: ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
