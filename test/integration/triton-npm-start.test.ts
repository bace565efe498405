import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { request } from 'undici';
import { stringify } from 'yaml';
import { freePort } from '../../cli/free-port';
import { ensurePytriton, TRITON_SERVER_VERSION } from '../../cli/pytriton-install';
import { boundToParent } from '../../platform/parent-death';
import { PROVISION_TIMEOUT_MS, provisionSyntheticEngine, SYNTHETIC_MODEL_REF, syntheticModelEntry } from '../support/llama-server-pool';
import { poolReady, stopProcess } from '../support/npm-start';
import { readStream, tokensOf, waitFor } from '../support/sse-client';
import { temporalAddressForTests } from '../support/stack';

/**
 * Issue 12 item 3: `npm start` (the built dist/cli/start.js) serves a pool of `engine: triton` with the spawned
 * `triton-server` runtime — a real tritonserver from the cached nvidia-pytriton venv over a llama-server on the
 * synthetic model. A task streams through it; a SIGKILLed tritonserver fails the replica, which restarts; a
 * stopped stack leaves no Triton process behind.
 */
const DIST = resolve(__dirname, '..', '..', 'dist');
const lines: Record<string, unknown>[] = [];
let stack: ChildProcess | undefined;
let apiUrl: string;

interface PoolHealth {
  ready: boolean;
  mock_engine?: boolean;
  metrics: { replicas: { engine_version: string | null; state: string; restarts: number; last_error: { kind: string; message: string } | null }[] };
}

async function health(): Promise<PoolHealth> {
  return (await (await request(`${apiUrl}/v1/pools/triton/health`)).body.json()) as PoolHealth;
}

function tritonPids(): number[] {
  return lines.filter((line) => line['msg'] === 'Triton server started').map((line) => Number(line['pid']));
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function streamTask(): Promise<number> {
  const taskId = randomUUID();
  const admitted = await request(`${apiUrl}/v1/tasks`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ task_id: taskId, session_id: randomUUID(), workload: 'completion', model_ref: SYNTHETIC_MODEL_REF, engine: 'triton', ctx: 2048, priority: 'interactive', seed: 5, prompt: 'Tell me about queues.', max_tokens: 10, deadline_ms: 60_000 }),
  });
  await admitted.body.dump();
  expect(admitted.statusCode).toBe(202);
  const events = await readStream(`${apiUrl}/v1/tasks/${taskId}/stream`).finished;
  expect(events.at(-1)?.event).toBe('end');
  return tokensOf(events).indices.length;
}

beforeAll(async () => {
  // Installed ahead, so the readiness wait below measures the start, not a cold install.
  await provisionSyntheticEngine();
  await ensurePytriton();
  const directory = mkdtempSync(join(tmpdir(), 'llama-orch-triton-start-'));
  const port = await freePort();
  apiUrl = `http://127.0.0.1:${port}`;
  const configPath = join(directory, 'config.yaml');
  writeFileSync(
    configPath,
    stringify({
      data_dir: join(directory, 'data'),
      auth: { mode: 'disabled' },
      gateway: { host: '127.0.0.1', port },
      dev: { allow_cpu_inference: true },
      models: [syntheticModelEntry()],
      pools: [
        {
          id: 'triton',
          engine: 'triton',
          model: SYNTHETIC_MODEL_REF,
          ctx: 2048,
          devices: [0],
          replicas: 1,
          engine_runtime: { kind: 'triton-server', slots: 1, threads: 2, model_name: 'llm', restart: { initial_backoff_ms: 200, max_backoff_ms: 1_000 } },
        },
      ],
    }),
  );
  const command = boundToParent(process.execPath, [join(DIST, 'cli', 'start.js'), '--config', configPath], 'SIGTERM');
  stack = spawn(command.command, command.args, { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, TEMPORAL_ADDRESS: temporalAddressForTests(), LOG_LEVEL: 'info', LOG_FORMAT: 'json' } });
  createInterface({ input: stack.stdout! }).on('line', (line) => {
    try {
      lines.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      // not a log line
    }
  });
  await waitFor(() => poolReady(apiUrl, 'triton'), 120_000, 'npm start to serve the Triton pool');
}, PROVISION_TIMEOUT_MS + 180_000);

afterAll(async () => {
  await stopProcess(stack);
});

test('ORCH-3057 OC-ADAPT-5060 OC-ADAPT-5070: npm start serves a triton pool — health reports Triton\'s own version (and the wrapped build), a real engine, and a task streams to max_tokens', async () => {
  const pool = await health();
  expect(pool.ready).toBe(true);
  expect(pool.mock_engine === true).toBe(false);
  expect(pool.metrics.replicas[0]?.engine_version).toMatch(new RegExp(`^triton-${TRITON_SERVER_VERSION.replaceAll('.', '\\.')}\\+b\\d+-[0-9a-f]+$`));
  // The synthetic model never samples its end-of-sequence token: the task runs to max_tokens.
  expect(await streamTask()).toBe(10);
  expect(lines.some((line) => line['msg'] === 'start-up self-test passed' && line['engine'] === 'triton' && String(line['engine_version']).startsWith('triton-'))).toBe(true);
});

test('ORCH-3039 OC-POOL-3011: a SIGKILLed tritonserver fails the replica (engine_exit, named in health) and the pool worker starts a new one that serves', async () => {
  const [first] = tritonPids();
  expect(first).toBeGreaterThan(0);
  process.kill(first ?? 0, 'SIGKILL');
  await waitFor(() => tritonPids().length >= 2, 90_000, 'a second Triton start');
  await waitFor(() => poolReady(apiUrl, 'triton'), 90_000, 'the Triton pool to be Ready again');
  const replica = (await health()).metrics.replicas[0];
  expect(replica?.restarts).toBeGreaterThanOrEqual(1);
  expect(replica?.last_error?.kind).toBe('engine_exit');
  expect(replica?.last_error?.message).toMatch(/tritonserver killed by SIGKILL/);
  expect(await streamTask()).toBe(10);
});

test('no engine outlives the stack: after npm start stops, every tritonserver and llama-server it started is gone', async () => {
  const engines = lines.filter((line) => line['msg'] === 'llama-server started').map((line) => Number(line['pid']));
  const pids = [...tritonPids(), ...engines];
  expect(engines.length).toBeGreaterThanOrEqual(2);
  await stopProcess(stack);
  await waitFor(() => pids.every((pid) => !alive(pid)), 15_000, 'the Triton and llama servers to be gone');
});
