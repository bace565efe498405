import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Agent, request } from 'undici';
import { ensureLlamaServer } from '../cli/llama-server-build';
import { DEFAULT_SYNTHETIC_MODEL_SPEC, ensureSyntheticModel } from '../cli/model-artifacts';
import { buildCompletionBody } from '../gpu-workers/engines/llamacpp/completion-request-body';
import { createLlamaCppAdapter } from '../gpu-workers/engines/llamacpp/llamacpp-adapter';
import { llamaServerArguments, llamaServerFlags, spawnLlamaServer, waitUntilHealthy } from '../gpu-workers/pool-manager/llama-server-process';
import { benchTemporal, runOrchestratedTask, startBenchOrchestrator, waitForPool, type BenchOrchestrator } from './bench-stack';
import { startListeningProcess, stopProcess } from './bench-processes';
import { ensureLiteLlm, LITELLM_VERSION, runViaLiteLlm, startLiteLlmProxy, type LiteLlmProxy } from './peers/litellm-proxy';
import { addCpu, cpuBetween, cpuSnapshot, formatCpuPerTask } from './cpu-accounting';
import { median, percentile } from './stats';
import { timeSseTokens, type StreamTiming } from './sse-timing';

/**
 * Time to first token and decode tokens/s, side by side in one run (issue 10 item 5), at each
 * concurrency in BENCH_CONCURRENCY (default 1,32,128), over the same engine:
 * - `direct`: straight to the engine;
 * - `litellm`: the LiteLLM proxy (PyPI, pinned below 1.107.0) in front of it — the peer (BENCH_PEER=0 skips);
 * - `orch`: through llama-orch as `npm start` runs it (gateway + workflow worker, a pool-worker child),
 *   fast start on (the default);
 * - `orch-queued`: the same with `placement.fast_start: false`, every task through the durable schedule
 *   (BENCH_QUEUED=0 skips).
 * BENCH_ENGINE=mock (default; TTFT 20 ms, 5 ms/token, 256 slots) or llama (a real llama-server with the
 * synthetic model, BENCH_SLOTS slots, default 4). Temporal: TEMPORAL_ADDRESS (e.g. the cluster of
 * `npm run temporal:cluster`) or a fresh dev server with the tuned settings.
 */
const ENGINE = process.env['BENCH_ENGINE'] === 'llama' ? 'llama' : 'mock';
const TOKENS_PER_REQUEST = Number(process.env['BENCH_TOKENS'] ?? 64);
const ENGINE_TTFT_MS = Number(process.env['BENCH_ENGINE_TTFT_MS'] ?? 20);
const ENGINE_INTER_TOKEN_MS = Number(process.env['BENCH_ENGINE_INTER_TOKEN_MS'] ?? 5);
const LLAMA_SLOTS = Number(process.env['BENCH_SLOTS'] ?? 4);
/** Requests per path at each concurrency, at least one per client. */
const REQUESTS = Number(process.env['BENCH_REQUESTS'] ?? 128);
const CONCURRENCY_LEVELS = (process.env['BENCH_CONCURRENCY'] ?? '1,32,128').split(',').map(Number);
const WITH_PEER = process.env['BENCH_PEER'] !== '0';
const WITH_QUEUED = process.env['BENCH_QUEUED'] !== '0';
const dist = resolve(__dirname, '..');

type PathName = 'direct' | 'litellm' | 'orch' | 'orch-queued';

interface Path {
  readonly name: PathName;
  run(seed: number): Promise<StreamTiming>;
}

interface Engine {
  readonly url: string;
  readonly model: string;
  readonly description: string;
  stop(): Promise<void>;
}

async function main(): Promise<void> {
  const workDir = mkdtempSync(join(tmpdir(), 'llama-orch-bench-'));
  const engine = ENGINE === 'llama' ? await startLlamaServer() : await startMockEngine();
  // A Temporal that does not start must not leave the engine running.
  const { address: temporalAddress, devServer } = await benchTemporal(workDir).catch(async (error: unknown) => {
    await engine.stop();
    throw error;
  });
  const temporal = process.env['TEMPORAL_ADDRESS'] ? `Temporal at ${temporalAddress}` : 'Temporal dev server (tuned)';
  const stacks: BenchOrchestrator[] = [];
  let peer: LiteLlmProxy | undefined;
  const dispatcher = new Agent({ connections: 512, keepAliveTimeout: 30_000 });
  try {
    const pool = (id: string) => ({ id, engine: 'llamacpp', model: engine.model, ctx: 4096, devices: [0], engine_runtime: { kind: 'external', url: engine.url } });
    const fast = await startBenchOrchestrator(workDir, temporalAddress, pool('bench'));
    stacks.push(fast);
    const queued = WITH_QUEUED ? await startBenchOrchestrator(workDir, temporalAddress, pool('bench-queued'), { placement: { fast_start: false } }) : undefined;
    if (queued) stacks.push(queued);
    if (WITH_PEER) {
      await ensureLiteLlm();
      peer = await startLiteLlmProxy({ engineBaseUrl: engine.url });
    }
    await waitForPool(fast.apiUrl, dispatcher, 'bench');
    if (queued) await waitForPool(queued.apiUrl, dispatcher, 'bench-queued');

    const paths: Path[] = [
      { name: 'direct', run: (seed) => runDirect(dispatcher, engine.url, seed) },
      ...(peer ? [{ name: 'litellm' as const, run: (seed: number) => runViaLiteLlm(dispatcher, peer?.url ?? '', peer?.model ?? '', seed, TOKENS_PER_REQUEST) }] : []),
      { name: 'orch', run: (seed) => runOrchestrated(dispatcher, fast.apiUrl, engine.model, seed) },
      ...(queued ? [{ name: 'orch-queued' as const, run: (seed: number) => runOrchestrated(dispatcher, queued.apiUrl, engine.model, seed) }] : []),
    ];
    const apiUrls = new Map<PathName, string>([['orch', fast.apiUrl], ...(queued ? [['orch-queued', queued.apiUrl] as [PathName, string]] : [])]);
    for (const path of paths) await runConcurrently(path, 4, 8, 0); // warm every path
    admissionMsByApi.clear();
    const rows: string[] = [];
    for (const concurrency of CONCURRENCY_LEVELS) {
      const perClient = Math.max(1, Math.ceil(REQUESTS / concurrency));
      const slices = perClient >= 4 ? 4 : 1;
      const results = new Map<PathName, StreamTiming[]>(paths.map((path) => [path.name, []]));
      const cpu = new Map<PathName, Map<string, number>>(paths.map((path) => [path.name, new Map<string, number>()]));
      // Slices alternate the paths so drift in machine load hits all alike; every path runs the same seeds.
      for (let slice = 0; slice < slices; slice += 1) {
        for (const path of paths) {
          const before = cpuSnapshot();
          const timings = await runConcurrently(path, concurrency, Math.ceil(perClient / slices), slice * 100_000);
          addCpu(cpu.get(path.name) ?? new Map<string, number>(), cpuBetween(before, cpuSnapshot()));
          results.get(path.name)?.push(...timings);
        }
      }
      rows.push(...report(concurrency, results, apiUrls));
      for (const path of paths) rows.push(`        CPU ms per task, ${path.name}: ${formatCpuPerTask(cpu.get(path.name) ?? new Map<string, number>(), results.get(path.name)?.length ?? 0)}`);
    }
    process.stdout.write(
      [
        '',
        `llama-orch relay benchmark — ${engine.description}, ${TOKENS_PER_REQUEST} tokens/request, ${temporal}, LiteLLM ${peer ? LITELLM_VERSION : 'skipped'}`,
        'conc  path          n    TTFT p50   TTFT p99   tok/s p50   added TTFT p50 / p99 vs direct   tok/s ratio',
        ...rows,
        '',
        'Targets (issue 10): orch added TTFT ≤ 5 ms p50 and ≤ 13 ms p99 at concurrency 32 (mock); tok/s ratio ≥ 0.98; orch added TTFT ≤ litellm added TTFT.',
        '',
      ].join('\n'),
    );
  } finally {
    await dispatcher.close();
    await peer?.stop();
    for (const stack of stacks) await stopProcess(stack.child);
    await engine.stop();
    await devServer?.stop();
  }
}

async function startMockEngine(): Promise<Engine> {
  const engine = await startListeningProcess(join(dist, 'gpu-workers/engines/mock-llamacpp/mock-engine-main.js'), [
    '--port', '0', '--slots', '256', '--ttft-ms', String(ENGINE_TTFT_MS), '--inter-token-ms', String(ENGINE_INTER_TOKEN_MS),
  ]);
  return {
    url: engine.url,
    model: 'mock:bench',
    description: `mock engine (TTFT ${ENGINE_TTFT_MS} ms, ${ENGINE_INTER_TOKEN_MS} ms/token, 256 slots)`,
    stop: () => stopProcess(engine.child),
  };
}

async function startLlamaServer(): Promise<Engine> {
  const binary = await ensureLlamaServer();
  const model = await ensureSyntheticModel(DEFAULT_SYNTHETIC_MODEL_SPEC);
  const args = llamaServerArguments(
    { modelPath: model.path, slots: LLAMA_SLOTS, contextPerSlot: 1024, threads: 2, useGpu: binary.backend === 'cuda', extraArgs: [], devices: [0] },
    await llamaServerFlags(binary.path),
  );
  const engine = await spawnLlamaServer({ binary: binary.path, args, devices: [0] });
  const probe = createLlamaCppAdapter({ baseUrl: engine.baseUrl });
  await waitUntilHealthy(engine, probe, 120_000);
  await probe.close();
  return {
    url: engine.baseUrl,
    model: 'bench:synthetic',
    description: `real llama-server ${binary.buildInfo} (${binary.backend}, ${LLAMA_SLOTS} slots), model ${model.name}`,
    stop: () => engine.stop(),
  };
}

async function runConcurrently(path: Path, concurrency: number, rounds: number, seedBase: number): Promise<StreamTiming[]> {
  const timings: StreamTiming[] = [];
  await Promise.all(
    Array.from({ length: concurrency }, async (_unused, client) => {
      for (let round = 0; round < rounds; round += 1) {
        const timing = await path.run(seedBase + client * 1_000 + round);
        // A real model may stop at EOS before max_tokens (the same seed stops at the same token on every path).
        if (ENGINE === 'mock' ? timing.tokens !== TOKENS_PER_REQUEST : timing.tokens === 0) throw new Error(`${path.name}: got ${timing.tokens} tokens`);
        timings.push(timing);
      }
    }),
  );
  return timings;
}

async function runDirect(dispatcher: Agent, engineUrl: string, seed: number): Promise<StreamTiming> {
  const startedAt = performance.now();
  // Exactly the body the adapter sends, so both paths ask the engine for the same work.
  const body = buildCompletionBody({ prompt: 'Benchmark prompt', maxTokens: TOKENS_PER_REQUEST, seed, samplerProfile: 'v1' }, 'Benchmark prompt');
  const response = await request(`${engineUrl}/completion`, { method: 'POST', dispatcher, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return timeSseTokens(response.body, startedAt, (_event, data) => data.includes('"stop":false'));
}

/** Where an orchestrated task's TTFT goes: the 202 (admission + the durable workflow start) and what follows. */
const admissionMsByApi = new Map<string, number[]>();

async function runOrchestrated(dispatcher: Agent, apiUrl: string, model: string, seed: number): Promise<StreamTiming> {
  const run = await runOrchestratedTask(dispatcher, apiUrl, { model, ctx: 2048, seed, prompt: 'Benchmark prompt', maxTokens: TOKENS_PER_REQUEST });
  const samples = admissionMsByApi.get(apiUrl) ?? [];
  samples.push(run.admissionMs);
  admissionMsByApi.set(apiUrl, samples);
  return run.timing;
}

const ttft = (timings: readonly StreamTiming[]): number[] => timings.map((timing) => timing.ttftMs);
const rate = (timings: readonly StreamTiming[]): number[] => timings.map((timing) => timing.tokensPerSecond).filter((value) => Number.isFinite(value));

function report(concurrency: number, results: ReadonlyMap<PathName, StreamTiming[]>, apiUrls: ReadonlyMap<PathName, string>): string[] {
  const direct = results.get('direct') ?? [];
  const breakdown = [...apiUrls].map(([name, apiUrl]) => {
    const admission = admissionMsByApi.get(apiUrl) ?? [];
    admissionMsByApi.set(apiUrl, []);
    const timings = results.get(name) ?? [];
    const dispatched = timings.flatMap((timing) => (timing.dispatchedMs === undefined ? [] : [timing.dispatchedMs]));
    return `        ${name}: 202 (admission + durable start) p50 ${fmt(median(admission))} / p99 ${fmt(percentile(admission, 0.99))} ms; dispatched frame at p50 ${fmt(median(dispatched))} ms`;
  });
  const rows = [...results].map(([name, timings]) => {
    const head = `${String(concurrency).padStart(4)}  ${name.padEnd(12)} ${String(timings.length).padStart(4)}  ${fmt(median(ttft(timings)))} ms ${fmt(percentile(ttft(timings), 0.99))} ms  ${fmt(median(rate(timings)), 9)}`;
    if (name === 'direct') return head;
    const addedP50 = median(ttft(timings)) - median(ttft(direct));
    const addedP99 = percentile(ttft(timings), 0.99) - percentile(ttft(direct), 0.99);
    const ratio = median(rate(timings)) / median(rate(direct));
    return `${head}   ${fmt(addedP50)} / ${fmt(addedP99)} ms                ${ratio.toFixed(3)}`;
  });
  return [...rows, ...breakdown];
}

function fmt(value: number, width = 7): string {
  return value.toFixed(1).padStart(width);
}

main().catch((error: unknown) => {
  process.stderr.write(`benchmark failed: ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
