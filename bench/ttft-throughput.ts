import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Agent, request } from 'undici';
import { benchTemporal, runOrchestratedTask, startBenchOrchestrator, waitForPool } from './bench-stack';
import { startListeningProcess, stopProcess } from './bench-processes';
import { median, percentile } from './stats';
import { timeSseTokens, type StreamTiming } from './sse-timing';

/**
 * Time to first token and tokens/s straight to the engine vs through the orchestrator, side by side in
 * one run, at concurrency 1 and 32 (issue 2 item 12). The engine is the mock (a separate process); the
 * orchestrator is `npm start`'s process tree (gateway + workflow worker, a pool-worker child) on a
 * Temporal dev server; this process only generates load.
 */
const TOKENS_PER_REQUEST = Number(process.env['BENCH_TOKENS'] ?? 64);
const ENGINE_TTFT_MS = Number(process.env['BENCH_ENGINE_TTFT_MS'] ?? 20);
const ENGINE_INTER_TOKEN_MS = Number(process.env['BENCH_ENGINE_INTER_TOKEN_MS'] ?? 5);
const ROUNDS_PER_WORKER = Number(process.env['BENCH_ROUNDS'] ?? 6);
const CONCURRENCY_LEVELS = [1, 32];
const dist = resolve(__dirname, '..');

interface Scenario {
  readonly name: 'direct' | 'orchestrated';
  run(seed: number): Promise<StreamTiming>;
}

async function main(): Promise<void> {
  const workDir = mkdtempSync(join(tmpdir(), 'llama-orch-bench-'));
  const { address: temporalAddress, devServer } = await benchTemporal(workDir);
  const engine = await startListeningProcess(join(dist, 'gpu-workers/engines/mock-llamacpp/mock-engine-main.js'), [
    '--port', '0', '--slots', '64', '--ttft-ms', String(ENGINE_TTFT_MS), '--inter-token-ms', String(ENGINE_INTER_TOKEN_MS),
  ]);
  const { apiUrl, child: stack } = await startBenchOrchestrator(workDir, temporalAddress, {
    id: 'bench', engine: 'llamacpp', model: 'mock:bench', ctx: 4096, devices: [0], engine_runtime: { kind: 'external', url: engine.url },
  });
  const dispatcher = new Agent({ connections: 256, keepAliveTimeout: 30_000 });
  try {
    await waitForPool(apiUrl, dispatcher, 'bench');
    const scenarios: Scenario[] = [
      { name: 'direct', run: (seed) => runDirect(dispatcher, engine.url, seed) },
      { name: 'orchestrated', run: (seed) => runOrchestrated(dispatcher, apiUrl, seed) },
    ];
    for (const scenario of scenarios) await runConcurrently(scenario, 4, 2); // warm both paths
    admissionMs.length = 0;
    const rows: string[] = [];
    for (const concurrency of CONCURRENCY_LEVELS) {
      const rounds = concurrency === 1 ? 40 : ROUNDS_PER_WORKER;
      // Alternate the two paths in slices so drift in machine load hits both alike.
      const results: Record<Scenario['name'], StreamTiming[]> = { direct: [], orchestrated: [] };
      const slices = concurrency === 1 ? 4 : 2;
      for (let slice = 0; slice < slices; slice += 1) {
        for (const scenario of scenarios) results[scenario.name].push(...(await runConcurrently(scenario, concurrency, Math.ceil(rounds / slices))));
      }
      rows.push(...report(concurrency, results.direct, results.orchestrated));
    }
    process.stdout.write(
      [
        '',
        `llama-orch relay benchmark — mock engine (TTFT ${ENGINE_TTFT_MS} ms, ${ENGINE_INTER_TOKEN_MS} ms/token, ${TOKENS_PER_REQUEST} tokens), Temporal dev server, ${process.env['HOSTNAME'] ?? 'this machine'}`,
        'conc  path          n    TTFT p50   TTFT p99   tok/s p50   added TTFT p50 / p99   tok/s ratio',
        ...rows,
        '',
        'Targets (issue 2): added TTFT ≤ 5 ms p50 and ≤ 13 ms p99 at concurrency 32; tok/s ratio ≥ 0.98.',
        '',
      ].join('\n'),
    );
  } finally {
    await dispatcher.close();
    await stopProcess(stack);
    await stopProcess(engine.child);
    await devServer?.stop();
  }
}

async function runConcurrently(scenario: Scenario, concurrency: number, rounds: number): Promise<StreamTiming[]> {
  const timings: StreamTiming[] = [];
  let seed = 1;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let round = 0; round < rounds; round += 1) {
        const timing = await scenario.run(seed++);
        if (timing.tokens !== TOKENS_PER_REQUEST) throw new Error(`${scenario.name}: got ${timing.tokens} tokens`);
        timings.push(timing);
      }
    }),
  );
  return timings;
}

async function runDirect(dispatcher: Agent, engineUrl: string, seed: number): Promise<StreamTiming> {
  const startedAt = performance.now();
  const response = await request(`${engineUrl}/completion`, {
    method: 'POST',
    dispatcher,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ prompt: 'Benchmark prompt', n_predict: TOKENS_PER_REQUEST, stream: true, seed, cache_prompt: false }),
  });
  return timeSseTokens(response.body, startedAt, (_event, data) => data.includes('"stop":false'));
}

const admissionMs: number[] = [];

async function runOrchestrated(dispatcher: Agent, apiUrl: string, seed: number): Promise<StreamTiming> {
  const run = await runOrchestratedTask(dispatcher, apiUrl, { model: 'mock:bench', ctx: 2048, seed, prompt: 'Benchmark prompt', maxTokens: TOKENS_PER_REQUEST });
  admissionMs.push(run.admissionMs);
  return run.timing;
}

function report(concurrency: number, direct: StreamTiming[], orchestrated: StreamTiming[]): string[] {
  const ttft = (timings: StreamTiming[]) => timings.map((timing) => timing.ttftMs);
  const rate = (timings: StreamTiming[]) => timings.map((timing) => timing.tokensPerSecond);
  const line = (name: string, timings: StreamTiming[], extra: string) =>
    `${String(concurrency).padStart(4)}  ${name.padEnd(12)} ${String(timings.length).padStart(4)}  ${fmt(median(ttft(timings)))} ms ${fmt(percentile(ttft(timings), 0.99))} ms  ${fmt(median(rate(timings)), 9)}   ${extra}`;
  const addedP50 = median(ttft(orchestrated)) - median(ttft(direct));
  const addedP99 = percentile(ttft(orchestrated), 0.99) - percentile(ttft(direct), 0.99);
  const ratio = median(rate(orchestrated)) / median(rate(direct));
  const admission = admissionMs.splice(0);
  const dispatched = orchestrated.flatMap((timing) => (timing.dispatchedMs === undefined ? [] : [timing.dispatchedMs]));
  const dispatchToToken = orchestrated.flatMap((timing) => (timing.dispatchedMs === undefined ? [] : [timing.ttftMs - timing.dispatchedMs]));
  return [
    line('direct', direct, ''),
    line('orchestrated', orchestrated, `${fmt(addedP50)} / ${fmt(addedP99)} ms       ${ratio.toFixed(3)}`),
    `            where the orchestrated TTFT goes (p50 / p99): admission 202 ${fmt(median(admission))} / ${fmt(percentile(admission, 0.99))} ms, ` +
      `submit→dispatched frame ${fmt(median(dispatched))} / ${fmt(percentile(dispatched, 0.99))} ms, dispatched→first token ${fmt(median(dispatchToToken))} / ${fmt(percentile(dispatchToToken, 0.99))} ms`,
  ];
}

function fmt(value: number, width = 7): string {
  return value.toFixed(1).padStart(width);
}


main().catch((error: unknown) => {
  process.stderr.write(`benchmark failed: ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
