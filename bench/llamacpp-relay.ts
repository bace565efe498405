import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { ensureLlamaServer } from '../cli/llama-server-build';
import { DEFAULT_SYNTHETIC_MODEL_SPEC, ensureSyntheticModel, ensureTinyModel } from '../cli/model-artifacts';
import { benchTemporal, runOrchestratedTask, startBenchOrchestrator, waitForPool } from './bench-stack';
import { buildCompletionBody } from '../gpu-workers/engines/llamacpp/completion-request-body';
import { createLlamaCppAdapter } from '../gpu-workers/engines/llamacpp/llamacpp-adapter';
import { llamaServerArguments, llamaServerFlags, spawnLlamaServer, waitUntilHealthy } from '../gpu-workers/pool-manager/llama-server-process';
import { stopProcess } from './bench-processes';
import { median, percentile } from './stats';
import { timeSseTokens, type StreamTiming } from './sse-timing';

/**
 * A real llama-server straight vs through the orchestrator, same prompts and seeds, in one run (issue
 * 3 item 8): time to first token and decode tokens/s, medians, p99 and ratios. One llama-server (one
 * slot, the deterministic profile) serves both paths; the orchestrator is `npm start`'s process tree
 * with an `external` pool pointing at it. BENCH_MODEL=synthetic (default: ~0.5 ms/token on 2 cores,
 * which stresses the relay) or smollm2 (the tiny real model).
 */
const MODEL = process.env['BENCH_MODEL'] === 'smollm2' ? 'smollm2' : 'synthetic';
const TOKENS_PER_REQUEST = Number(process.env['BENCH_TOKENS'] ?? 64);
const REQUESTS_PER_PATH = Number(process.env['BENCH_REQUESTS'] ?? 60);
const THREADS = Number(process.env['BENCH_THREADS'] ?? 2);
const CONTEXT_TOKENS = 1024;
const SLICES = 4;
const PROMPTS = ['Once upon a time', 'The orchestrator said', 'Seeds decide', 'A queue of GPUs'];

interface Scenario {
  readonly name: 'direct' | 'orchestrated';
  run(seed: number, prompt: string): Promise<StreamTiming>;
}

async function main(): Promise<void> {
  const workDir = mkdtempSync(join(tmpdir(), 'llama-orch-bench-llamacpp-'));
  const binary = await ensureLlamaServer();
  const model = MODEL === 'smollm2' ? await ensureTinyModel() : await ensureSyntheticModel(DEFAULT_SYNTHETIC_MODEL_SPEC);
  const args = llamaServerArguments(
    { modelPath: model.path, slots: 1, contextPerSlot: CONTEXT_TOKENS, threads: THREADS, useGpu: binary.backend === 'cuda', extraArgs: [], devices: [0] },
    await llamaServerFlags(binary.path),
  );
  const engine = await spawnLlamaServer({ binary: binary.path, args, devices: [0] });
  const probe = createLlamaCppAdapter({ baseUrl: engine.baseUrl });
  await waitUntilHealthy(engine, probe, 120_000);
  await probe.close();

  const { address: temporalAddress, devServer } = await benchTemporal(workDir);
  const { apiUrl, child: stack } = await startBenchOrchestrator(workDir, temporalAddress, {
    id: 'bench', engine: 'llamacpp', model: `bench:${MODEL}`, ctx: CONTEXT_TOKENS, devices: [0], engine_runtime: { kind: 'external', url: engine.baseUrl },
  });
  const dispatcher = new Agent({ connections: 16, keepAliveTimeout: 30_000 });
  try {
    await waitForPool(apiUrl, dispatcher, 'bench');
    const scenarios: Scenario[] = [
      { name: 'direct', run: (seed, prompt) => runDirect(dispatcher, engine.baseUrl, seed, prompt) },
      { name: 'orchestrated', run: (seed, prompt) => runOrchestrated(dispatcher, apiUrl, seed, prompt) },
    ];
    for (const scenario of scenarios) for (let warm = 0; warm < 4; warm += 1) await scenario.run(warm, PROMPTS[0] ?? '');
    const results: Record<Scenario['name'], StreamTiming[]> = { direct: [], orchestrated: [] };
    const perSlice = Math.ceil(REQUESTS_PER_PATH / SLICES);
    // Slices alternate the paths so drift in machine load hits both alike; each slice runs the same seeds.
    for (let slice = 0; slice < SLICES; slice += 1) {
      for (const scenario of scenarios) {
        for (let index = 0; index < perSlice; index += 1) {
          const seed = 1001 + slice * perSlice + index;
          results[scenario.name].push(await scenario.run(seed, PROMPTS[seed % PROMPTS.length] ?? ''));
        }
      }
    }
    process.stdout.write(
      [
        '',
        `llama-orch relay benchmark — real llama-server ${binary.buildInfo} (${binary.backend}, -t ${THREADS}, 1 slot), model ${model.name}, ` +
          `${TOKENS_PER_REQUEST} tokens/request, concurrency 1, Temporal dev server`,
        'path          n    TTFT p50   TTFT p99   tok/s p50   tok/s p99(low)',
        line('direct', results.direct),
        line('orchestrated', results.orchestrated),
        ratios(results.direct, results.orchestrated),
        '',
      ].join('\n'),
    );
  } finally {
    await dispatcher.close();
    await stopProcess(stack);
    await engine.stop();
    await devServer?.stop();
  }
}

async function runDirect(dispatcher: Agent, engineUrl: string, seed: number, prompt: string): Promise<StreamTiming> {
  const startedAt = performance.now();
  // Exactly the body the adapter sends, so both paths ask the engine for the same work.
  const body = buildCompletionBody({ prompt, maxTokens: TOKENS_PER_REQUEST, seed, samplerProfile: 'v1' }, prompt);
  const response = await request(`${engineUrl}/completion`, { method: 'POST', dispatcher, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return timeSseTokens(response.body, startedAt, (_event, data) => data.includes('"stop":false'));
}

async function runOrchestrated(dispatcher: Agent, apiUrl: string, seed: number, prompt: string): Promise<StreamTiming> {
  const run = await runOrchestratedTask(dispatcher, apiUrl, { model: `bench:${MODEL}`, ctx: CONTEXT_TOKENS, seed, prompt, maxTokens: TOKENS_PER_REQUEST });
  return run.timing;
}

const ttft = (timings: readonly StreamTiming[]): number[] => timings.map((timing) => timing.ttftMs);
const rate = (timings: readonly StreamTiming[]): number[] => timings.map((timing) => timing.tokensPerSecond).filter((value) => Number.isFinite(value));

function line(name: string, timings: readonly StreamTiming[]): string {
  return `${name.padEnd(12)} ${String(timings.length).padStart(4)}  ${fmt(median(ttft(timings)))} ms ${fmt(percentile(ttft(timings), 0.99))} ms  ${fmt(median(rate(timings)), 9)}   ${fmt(percentile(rate(timings), 0.01), 9)}`;
}

function ratios(direct: readonly StreamTiming[], orchestrated: readonly StreamTiming[]): string {
  const ttftRatio = median(ttft(orchestrated)) / median(ttft(direct));
  const addedP50 = median(ttft(orchestrated)) - median(ttft(direct));
  const addedP99 = percentile(ttft(orchestrated), 0.99) - percentile(ttft(direct), 0.99);
  const rateRatio = median(rate(orchestrated)) / median(rate(direct));
  return `ratios (orchestrated / direct): TTFT p50 ${ttftRatio.toFixed(2)}× (+${addedP50.toFixed(1)} ms p50, +${addedP99.toFixed(1)} ms p99), decode tok/s p50 ${rateRatio.toFixed(3)}`;
}

function fmt(value: number, width = 7): string {
  return value.toFixed(1).padStart(width);
}


main().catch((error: unknown) => {
  process.stderr.write(`benchmark failed: ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
