import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { randomUUID } from 'node:crypto';
import { Agent, request } from 'undici';
import { stringify } from 'yaml';
import { freePort } from '../../cli/free-port';
import { waitFor } from '../support/sse-client';
import { temporalAddressForTests } from '../support/stack';

/**
 * `gateway.processes: 2` (issue 10 item 4): `npm start` runs two gateway processes on one port. Each
 * request may land on either; a stream read through the process that did not admit its task is relayed,
 * and SIGTERM stops every process of the stack.
 */
const START = resolve(__dirname, '..', '..', 'dist', 'cli', 'start.js');
let child: ChildProcess;
let apiUrl: string;
let poolId: string;
let configPath: string;
let dataDir: string;
const lines: Record<string, unknown>[] = [];

beforeAll(async () => {
  const directory = mkdtempSync(join(tmpdir(), 'llama-orch-gateways-'));
  const port = await freePort();
  apiUrl = `http://127.0.0.1:${port}`;
  configPath = join(directory, 'config.yaml');
  poolId = `gw-${randomUUID().slice(0, 8)}`;
  writeFileSync(
    configPath,
    stringify({
      data_dir: (dataDir = join(directory, 'data')),
      auth: { mode: 'disabled' },
      gateway: { host: '127.0.0.1', port, processes: 2 },
      pools: [{ id: poolId, engine: 'llamacpp', model: 'mock:gateways', ctx: 2048, devices: [0], engine_runtime: { kind: 'mock', slots: 4, ttft_ms: 5, inter_token_ms: 10 } }],
    }),
  );
  child = spawn(process.execPath, [START, '--config', configPath], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, TEMPORAL_ADDRESS: temporalAddressForTests(), LOG_LEVEL: 'info' } });
  let buffered = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    buffered += chunk.toString('utf8');
    const parts = buffered.split('\n');
    buffered = parts.pop() ?? '';
    for (const line of parts) {
      try {
        lines.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        // not a log line
      }
    }
  });
  child.stderr?.resume();
  await waitFor(
    async () => {
      try {
        const response = await request(`${apiUrl}/v1/pools/${poolId}/health`, { reset: true });
        const body = (await response.body.json()) as { ready?: boolean };
        return response.statusCode === 200 && body.ready === true;
      } catch {
        return false;
      }
    },
    60_000,
    'the stack to serve',
  );
}, 90_000);

afterAll(async () => {
  if (child.exitCode === null && child.signalCode === null) {
    const exited = new Promise((resolveExit) => child.once('exit', resolveExit));
    child.kill('SIGTERM');
    await exited;
  }
  child.stdout?.destroy();
  child.stderr?.destroy();
});

test('issue 15: a second npm start on the same data dir says where the running stack is and exits non-zero, starting nothing', async () => {
  const second = spawn(process.execPath, [START, '--config', configPath], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, TEMPORAL_ADDRESS: temporalAddressForTests() } });
  let stderr = '';
  second.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8');
  });
  const code = await new Promise<number | null>((resolveExit) => second.once('exit', (exitCode) => resolveExit(exitCode)));
  expect(code).not.toBe(0);
  expect(stderr).toContain('already running');
  expect(stderr).toContain(apiUrl);
  expect(stderr).toContain(`pid ${String(child.pid)}`);
  // The running stack is untouched.
  const health = await request(`${apiUrl}/v1/pools/${poolId}/health`, { reset: true });
  expect(((await health.body.json()) as { ready?: boolean }).ready).toBe(true);
}, 30_000);

test('issue 10: two gateway processes share the port — tasks admitted by either stream in full through either, and SIGTERM stops the whole stack', async () => {
  const results = await Promise.all(
    Array.from({ length: 8 }, async () => {
      // A fresh connection per request: the primary hands connections to the processes in turn.
      const fresh = new Agent({ pipelining: 0 });
      try {
        const taskId = randomUUID();
        const admitted = await request(`${apiUrl}/v1/tasks`, {
          method: 'POST',
          dispatcher: fresh,
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ task_id: taskId, session_id: randomUUID(), workload: 'completion', model_ref: 'mock:gateways', engine: 'llamacpp', ctx: 1024, priority: 'interactive', prompt: 'p', max_tokens: 12, deadline_ms: 30_000 }),
        });
        expect(admitted.statusCode).toBe(202);
        await admitted.body.dump();
        const stream = await request(`${apiUrl}/v1/tasks/${taskId}/stream`, { dispatcher: new Agent(), reset: true });
        const text = await stream.body.text();
        return { taskId, tokens: (text.match(/^event: token$/gm) ?? []).length, ended: /^event: end$/m.test(text) };
      } finally {
        await fresh.close();
      }
    }),
  );
  expect(results.every((result) => result.tokens === 12 && result.ended)).toBe(true);
  // Both processes admitted tasks (their log lines carry their pid).
  const admittedBy = new Set(lines.filter((line) => line['msg'] === 'task admitted' && line['pool_id'] === poolId).map((line) => line['pid']));
  expect(admittedBy.size).toBe(2);

  const pids = [...new Set(lines.map((line) => Number(line['pid'])).filter((pid) => Number.isInteger(pid) && pid > 0))];
  const exited = new Promise<number | null>((resolveExit) => child.once('exit', (code) => resolveExit(code)));
  child.kill('SIGTERM');
  expect(await exited).toBe(0);
  // Stopped cleanly: the data dir's lock is released for the next start.
  expect(existsSync(join(dataDir, 'run', 'stack.lock'))).toBe(false);
  const alive = pids.filter((pid) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  });
  expect(alive).toEqual([]);
}, 90_000);

/** Every process under `root`, from /proc (children, their children, …). */
function descendantsOf(root: number): number[] {
  const parentOf = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      parentOf.set(Number(entry), Number(stat.split(') ')[1]?.split(' ')[1]));
    } catch {
      // gone meanwhile
    }
  }
  const found: number[] = [];
  const walk = (pid: number): void => {
    for (const [child, parent] of parentOf) {
      if (parent === pid) {
        found.push(child);
        walk(child);
      }
    }
  };
  walk(root);
  return found;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test('issue 15: npm start SIGKILLed — its gateway processes and its pool worker (with its engine) end within seconds', async () => {
  const directory = mkdtempSync(join(tmpdir(), 'llama-orch-orphans-'));
  const port = await freePort();
  const killedPool = `gk-${randomUUID().slice(0, 8)}`;
  const path = join(directory, 'config.yaml');
  writeFileSync(
    path,
    stringify({
      data_dir: join(directory, 'data'),
      auth: { mode: 'disabled' },
      gateway: { host: '127.0.0.1', port, processes: 2 },
      pools: [{ id: killedPool, engine: 'llamacpp', model: 'mock:orphans', ctx: 2048, devices: [0], engine_runtime: { kind: 'mock', slots: 2 } }],
    }),
  );
  const stack = spawn(process.execPath, [START, '--config', path], { stdio: ['ignore', 'ignore', 'ignore'], env: { ...process.env, TEMPORAL_ADDRESS: temporalAddressForTests(), LOG_LEVEL: 'warn' } });
  await waitFor(
    async () => {
      try {
        const response = await request(`http://127.0.0.1:${port}/v1/pools/${killedPool}/health`, { reset: true });
        return response.statusCode === 200 && ((await response.body.json()) as { ready?: boolean }).ready === true;
      } catch {
        return false;
      }
    },
    60_000,
    'the second stack to serve',
  );
  const children = descendantsOf(stack.pid ?? 0);
  // Two gateway processes and a pool worker at least (the mock engine runs inside the pool worker).
  expect(children.length).toBeGreaterThanOrEqual(3);
  stack.kill('SIGKILL');
  await waitFor(() => children.every((pid) => !alive(pid)), 15_000, 'every child of the killed stack to end');
}, 90_000);
