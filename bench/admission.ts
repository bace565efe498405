import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Agent, request } from 'undici';
import { stringify } from 'yaml';
import { freePort } from '../cli/free-port';
import { benchTemporal, waitForPool } from './bench-stack';
import { stopProcess } from './bench-processes';
import { heapSnapshotFlags, liveHeapBytes } from './heap-snapshot';
import { median, percentile } from './stats';
import { timeSseTokens } from './sse-timing';
import { announceParkedReplica } from './parked-replica';
import { createLogger } from '../platform/logger';
import { connectClient } from '../platform/temporal-connections';

/**
 * Admission under load (issue 4 item 7), in one run against a gateway, a workflow worker and a pool
 * worker in separate processes, with the mock engine: admission latency and accepted durable tasks/s at saturation, admission → first token, the
 * latency of a 429 under overload, and gateway memory per queued task. Auth is off here (benchmarks
 * measure the queue, not key checks).
 */
const SATURATION_SECONDS = Number(process.env['BENCH_SATURATION_SECONDS'] ?? 15);
const SUBMITTERS = Number(process.env['BENCH_SUBMITTERS'] ?? 32);
const QUEUED_TASKS = Number(process.env['BENCH_QUEUED_TASKS'] ?? 10_000);
const CORES = availableParallelism();
const GATEWAY_PROCESSES = Number(process.env['BENCH_GATEWAY_PROCESSES'] ?? 1);
const dist = resolve(__dirname, '..');

async function main(): Promise<void> {
  const workDir = mkdtempSync(join(tmpdir(), 'llama-orch-bench-admission-'));
  const { address: temporalAddress, devServer } = await benchTemporal(workDir);
  const gatewayPort = await freePort();
  const configPath = join(workDir, 'bench.yaml');
  writeFileSync(configPath, stringify({
    data_dir: workDir,
    auth: { mode: 'disabled' },
    // One tenant submits everything here; its default quota (1024 jobs) would cap the queue under test.
    quotas: { default: { max_concurrent_jobs: null, max_memory_bytes: null } },
    gateway: { host: '127.0.0.1', port: gatewayPort, processes: GATEWAY_PROCESSES },
    pools: [
      // Fast engine, many slots: admission and Temporal are what is measured.
      { id: 'served', engine: 'llamacpp', model: 'mock:served', ctx: 4096, devices: [0], queue: { capacity: 100_000 },
        engine_runtime: { kind: 'mock', ttft_ms: 1, inter_token_ms: 1, slots: 64 } },
      // No worker is started for this pool (a Ready record stands in, bench/parked-replica.ts): its tasks stay
      // queued, which the overload and memory phases need.
      { id: 'parked', engine: 'llamacpp', model: 'mock:parked', ctx: 4096, devices: [0], queue: { capacity: QUEUED_TASKS, full_policy: 'reject' },
        engine_runtime: { kind: 'external', url: 'http://127.0.0.1:9' } },
    ],
  }));
  // The parts as separate processes (the multi-host layout), so the gateway's memory is its own.
  const env = { ...process.env, TEMPORAL_ADDRESS: temporalAddress, LOG_LEVEL: 'error', ORCH_INTERNAL_TOKEN: randomUUID() };
  const launch = (script: string, args: readonly string[] = [], nodeFlags: readonly string[] = []): ChildProcess =>
    spawn(process.execPath, [...nodeFlags, join(dist, script), '--config', configPath, ...args], { stdio: ['ignore', 'ignore', 'inherit'], env });
  // BENCH_GATEWAY_NODE_FLAGS, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`, profiles the gateway alone.
  const extraGatewayFlags = (process.env['BENCH_GATEWAY_NODE_FLAGS'] ?? '').split(' ').filter((flag) => flag.length > 0);
  // BENCH_GATEWAY_PROCESSES > 1: `npm start`'s cluster of gateway processes (each with its workflow worker)
  // instead of one gateway-main; the memory phase, which reads one process, is skipped then.
  const clustered = GATEWAY_PROCESSES > 1;
  const gateway = clustered ? launch('cli/start.js') : launch('api/gateway-main.js', [], [...heapSnapshotFlags(workDir), ...extraGatewayFlags]);
  const workflowWorker = clustered ? undefined : launch('workflows/workflow-worker-main.js');
  const poolWorker = clustered ? undefined : launch('gpu-workers/pool-worker-main.js', ['--pool', 'served']);
  const gatewayPids = (): number[] => (clustered ? childPids(gateway.pid ?? 0, 'gateway-worker-main') : [gateway.pid ?? 0]);
  const apiUrl = `http://127.0.0.1:${gatewayPort}`;
  const dispatcher = new Agent({ connections: 256, keepAliveTimeout: 30_000 });
  const lines: string[] = [];
  try {
    await waitForPool(apiUrl, dispatcher, 'served');
    // 'parked' has no worker; a Ready record lets admission queue its tasks (a pool with none is refused, ORCH-3018).
    const announcer = await connectClient(temporalAddress, 'default');
    try {
      await announceParkedReplica(announcer.client, { poolId: 'parked', model: 'mock:parked', ctx: 4096, slots: 1 }, createLogger('bench'));
    } finally {
      await announcer.connection.close();
    }
    await new Promise((resolveWait) => setTimeout(resolveWait, 1_500));

    // 1. Saturation: closed-loop submitters, each streams its task to the end before the next.
    const admitMs: number[] = [];
    const firstTokenMs: number[] = [];
    let accepted = 0;
    const deadline = performance.now() + SATURATION_SECONDS * 1000;
    const startedAt = performance.now();
    await Promise.all(Array.from({ length: SUBMITTERS }, async () => {
      while (performance.now() < deadline) {
        const taskId = randomUUID();
        const t0 = performance.now();
        const status = await post(dispatcher, apiUrl, task(taskId, 'mock:served', 4));
        admitMs.push(performance.now() - t0);
        if (status !== 202) continue;
        accepted += 1;
        const stream = await request(`${apiUrl}/v1/tasks/${taskId}/stream`, { dispatcher });
        const timing = await timeSseTokens(stream.body, t0, (event) => event === 'token');
        firstTokenMs.push(timing.ttftMs);
      }
    }));
    const elapsedS = (performance.now() - startedAt) / 1000;
    lines.push(
      `saturation (${SUBMITTERS} closed-loop submitters, ${SATURATION_SECONDS} s, 4-token tasks):`,
      `  admission 202 latency   p50 ${fmt(median(admitMs))} ms   p99 ${fmt(percentile(admitMs, 0.99))} ms`,
      `  accepted durable tasks  ${(accepted / elapsedS).toFixed(1)} /s  (${(accepted / elapsedS / CORES).toFixed(1)} per core on ${CORES} cores; target ≥ 150 per core)`,
      `  admission → first token p50 ${fmt(median(firstTokenMs))} ms   p99 ${fmt(percentile(firstTokenMs, 0.99))} ms`,
    );

    // 2. Memory per queued task: fill the parked pool, reading the gateway process's RSS before and after.
    const gatewayPid = gateway.pid ?? 0;
    const heapBefore = clustered ? 0 : await liveHeapBytes(gateway, workDir);
    const rssBefore = clustered ? 0 : rssBytes(gatewayPid);
    let queued = 0;
    let refusedWhileFilling = 0;
    const fillStarted = performance.now();
    await Promise.all(Array.from({ length: 64 }, async () => {
      // Stops at the first refusal too, so a misconfigured run ends instead of spinning.
      while (queued < QUEUED_TASKS && refusedWhileFilling === 0) {
        queued += 1;
        if ((await post(dispatcher, apiUrl, task(randomUUID(), 'mock:parked', 4))) !== 202) {
          queued -= 1;
          refusedWhileFilling += 1;
        }
      }
    }));
    if (refusedWhileFilling > 0) process.stderr.write(`the parked queue refused a task after ${queued} were queued\n`);
    await new Promise((resolveDelay) => setTimeout(resolveDelay, 2_000));
    const rssAfter = clustered ? 0 : rssBytes(gatewayPid);
    const fillSeconds = (performance.now() - fillStarted) / 1000;
    const heapAfter = clustered ? 0 : await liveHeapBytes(gateway, workDir);
    if (!clustered) lines.push(
      `memory (${queued} tasks queued in ${fillSeconds.toFixed(0)} s):`,
      `  gateway live heap ${(heapBefore / 2 ** 20).toFixed(1)} → ${(heapAfter / 2 ** 20).toFixed(1)} MiB: ${((heapAfter - heapBefore) / queued / 1024).toFixed(2)} KiB per queued task (target ≤ 4 KB; after a full GC, from heap snapshots)`,
      `  gateway RSS ${(rssBefore / 2 ** 20).toFixed(0)} → ${(rssAfter / 2 ** 20).toFixed(0)} MiB: ${((rssAfter - rssBefore) / queued / 1024).toFixed(2)} KiB per queued task (includes garbage not yet collected)`,
    );

    // 3. Overload: the parked pool is full; every request must be a 429 with its headers, fast. With 32
    // closed-loop clients the latency is mostly the wait behind the other 31 (32 / refusals per second);
    // one client alone shows what answering a 429 itself costs, round trip included.
    let withoutHeaders = 0;
    let notRefused = 0;
    const overload = async (clients: number, perClient: number): Promise<{ latencies: number[]; perSecond: number }> => {
      const latencies: number[] = [];
      const started = performance.now();
      await Promise.all(Array.from({ length: clients }, async () => {
        for (let index = 0; index < perClient; index += 1) {
          const t0 = performance.now();
          const response = await request(`${apiUrl}/v1/tasks`, {
            method: 'POST', dispatcher, headers: { 'content-type': 'application/json' }, body: JSON.stringify(task(randomUUID(), 'mock:parked', 4)),
          });
          await response.body.dump();
          latencies.push(performance.now() - t0);
          if (response.statusCode !== 429) notRefused += 1;
          else if (!response.headers['retry-after'] || !response.headers['x-backoff-ms']) withoutHeaders += 1;
        }
      }));
      return { latencies, perSecond: latencies.length / ((performance.now() - started) / 1000) };
    };
    const cpuBefore = gatewayPids().reduce((sum, pid) => sum + cpuMs(pid), 0);
    const crowded = await overload(32, 60);
    const alone = await overload(1, 500);
    // CPU time per refusal does not depend on how busy the machine is, unlike the latencies.
    const cpuPerRefusalUs = ((gatewayPids().reduce((sum, pid) => sum + cpuMs(pid), 0) - cpuBefore) * 1000) / (crowded.latencies.length + alone.latencies.length);
    lines.push(
      `overload (${crowded.latencies.length + alone.latencies.length} requests at a full queue):`,
      `  32 concurrent: 429 latency p50 ${fmt(median(crowded.latencies))} ms   p99 ${fmt(percentile(crowded.latencies, 0.99))} ms   (${crowded.perSecond.toFixed(0)} refusals/s)`,
      `  1 client:      429 latency p50 ${fmt(median(alone.latencies))} ms   p99 ${fmt(percentile(alone.latencies, 0.99))} ms   (${alone.perSecond.toFixed(0)} refusals/s) (target p99 ≤ 2 ms)`,
      `  gateway CPU per 429 ${cpuPerRefusalUs.toFixed(0)} µs; not 429: ${notRefused}; 429 without headers: ${withoutHeaders}`,
    );
    const temporal = process.env['TEMPORAL_ADDRESS'] ? `Temporal at ${temporalAddress}` : 'Temporal dev server, file-backed';
    process.stdout.write(['', `llama-orch admission benchmark (mock engine, ${temporal}, ${GATEWAY_PROCESSES} gateway process${GATEWAY_PROCESSES > 1 ? 'es' : ''})`, ...lines, ''].join('\n'));
  } finally {
    await dispatcher.close();
    await Promise.all([gateway, workflowWorker, poolWorker].map((child) => stopProcess(child)));
    await devServer?.stop();
  }
}

/** A day's deadline: parked tasks wait behind thousands of others and must not be refused as DEADLINE_UNMET. */
const DEADLINE_MS = 86_400_000;

function task(taskId: string, model: string, maxTokens: number): Record<string, unknown> {
  return { task_id: taskId, session_id: randomUUID(), workload: 'completion', model_ref: model, engine: 'llamacpp', ctx: 2048, priority: 'interactive', prompt: 'bench', max_tokens: maxTokens, deadline_ms: DEADLINE_MS };
}

async function post(dispatcher: Agent, apiUrl: string, body: Record<string, unknown>): Promise<number> {
  const response = await request(`${apiUrl}/v1/tasks`, { method: 'POST', dispatcher, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  await response.body.dump();
  return response.statusCode;
}

/** User + system CPU time of a process so far, from /proc (clock ticks of 10 ms). */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  // After the command name: state is field 3, utime 14 and stime 15 (1-based), so indexes 11 and 12 here.
  return (Number(fields[11] ?? 0) + Number(fields[12] ?? 0)) * 10;
}

/** Pids of the processes under `parent` whose command line names `script` (the cluster's gateway processes). */
function childPids(parent: number, script: string): number[] {
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .filter((entry) => {
      try {
        const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
        return Number(stat.split(') ')[1]?.split(' ')[1]) === parent && readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(script);
      } catch {
        return false;
      }
    })
    .map(Number);
}

function rssBytes(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(match?.[1] ?? 0) * 1024;
}


function fmt(value: number): string {
  return value.toFixed(1).padStart(7);
}

main().catch((error: unknown) => {
  process.stderr.write(`benchmark failed: ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
