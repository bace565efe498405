import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { request } from 'undici';
import type { SupervisedProcessStatus } from '../../core/supervised-process';
import { PidFile } from '../../platform/pid-file';
import { createLogger } from '../../platform/logger';
import { startNpmStack, stopProcess, type NpmStartStack } from '../support/npm-start';
import { alive, descendantsOf, processesMentioning } from '../../chaos/process-table';
import { readStream, tokensOf, waitFor } from '../support/sse-client';

/**
 * Issue 15 on the default layout: `npm start` with its own embedded Temporal server, as a new user runs it.
 * The Temporal server SIGKILLed under streaming load comes back by itself and every task ends with its
 * tokens once, in order; the main process SIGKILLed leaves nothing running; SIGTERM stops it all.
 */
const TOKENS = 60;
const START = resolve(__dirname, '..', '..', 'dist', 'cli', 'start.js');
let stack: NpmStartStack;

beforeAll(async () => {
  stack = await startNpmStack({ model: 'mock:supervised', engineRuntime: { slots: 4, ttft_ms: 5, inter_token_ms: 40 } });
}, 120_000);

afterAll(async () => {
  await stopProcess(stack.child);
});

function withoutTemporalAddress(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env['TEMPORAL_ADDRESS'];
  return env;
}

async function health(apiUrl: string): Promise<{ statusCode: number; ready: boolean; processes: SupervisedProcessStatus[] }> {
  const response = await request(`${apiUrl}/health`, { reset: true });
  const body = (await response.body.json()) as { ready: boolean; processes: SupervisedProcessStatus[] };
  return { statusCode: response.statusCode, ...body };
}

async function submit(apiUrl: string, model: string): Promise<string> {
  const taskId = randomUUID();
  const response = await request(`${apiUrl}/v1/tasks`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ task_id: taskId, session_id: randomUUID(), workload: 'completion', model_ref: model, engine: 'llamacpp', ctx: 1024, priority: 'interactive', prompt: 'p', max_tokens: TOKENS, deadline_ms: 120_000 }),
  });
  expect(response.statusCode).toBe(202);
  await response.body.dump();
  return taskId;
}

test('issue 15: GET /health lists every supervised process (main, temporal, pool worker) running with no restarts', async () => {
  const { statusCode, ready, processes } = await health(stack.apiUrl);
  expect(statusCode).toBe(200);
  expect(ready).toBe(true);
  expect(processes.map((entry) => entry.role).sort()).toEqual(['main', 'pool-worker', 'temporal']);
  for (const entry of processes) {
    expect(entry).toMatchObject({ state: 'running', restarts: 0 });
    expect(alive(entry.pid ?? 0)).toBe(true);
  }
  expect(processes.find((entry) => entry.role === 'main')?.pid).toBe(stack.child.pid);
});

test('issue 15: a second npm start on the same data dir is refused before it starts its own Temporal server — nothing of it is left running', async () => {
  const before = processesMentioning(dirname(stack.configPath)).sort((a, b) => a - b);
  const second = spawn(process.execPath, [START, '--config', stack.configPath], { stdio: ['ignore', 'ignore', 'pipe'], env: withoutTemporalAddress() });
  let stderr = '';
  second.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8');
  });
  const code = await new Promise<number | null>((resolveExit) => second.once('exit', (exitCode) => resolveExit(exitCode)));
  expect(code).toBe(1);
  expect(stderr).toContain(`already running on data dir ${stack.dataDir} (pid ${String(stack.child.pid)}, API ${stack.apiUrl}`);
  expect(stderr).not.toContain('starting the Temporal dev server');
  expect(processesMentioning(dirname(stack.configPath)).sort((a, b) => a - b)).toEqual(before);
  expect((await health(stack.apiUrl)).ready).toBe(true);
}, 30_000);

test('issue 15: the embedded Temporal server SIGKILLed under streaming load is restarted on its data; every task ends with each token once, in order, and /health and /metrics count the restart', async () => {
  // Four tasks decode at once (slots: 4) and four wait in the pool queue, which lives in Temporal.
  const taskIds = await Promise.all(Array.from({ length: 8 }, () => submit(stack.apiUrl, 'mock:supervised')));
  const readers = taskIds.map((taskId) => readStream(`${stack.apiUrl}/v1/tasks/${taskId}/stream`, { headers: {} }));
  await waitFor(() => readers.some((reader) => reader.events.some((event) => event.event === 'token')), 10_000, 'tokens to flow');
  const before = (await health(stack.apiUrl)).processes.find((entry) => entry.role === 'temporal');
  process.kill(before?.pid ?? 0, 'SIGKILL');

  const streams = await Promise.all(readers.map((reader) => reader.finished));
  for (const events of streams) {
    expect(events.at(-1)?.event).toBe('end');
    expect(tokensOf(events).indices).toEqual(Array.from({ length: TOKENS }, (_unused, index) => index));
  }
  const after = await health(stack.apiUrl);
  const temporal = after.processes.find((entry) => entry.role === 'temporal');
  expect(temporal).toMatchObject({ state: 'running', restarts: 1, last_exit: 'signal SIGKILL' });
  expect(temporal?.pid).not.toBe(before?.pid);
  expect(after.ready).toBe(true);
  const metrics = await (await request(`${stack.apiUrl}/metrics`, { reset: true })).body.text();
  expect(metrics).toMatch(/^supervised_process_restarts\{process="temporal"\} 1$/m);
  expect(metrics).toMatch(/^supervised_process_up\{process="temporal"\} 1$/m);
}, 90_000);

test('issue 15: npm start SIGKILLed — its Temporal server and pool worker are gone within 10 s; the next start reaps what a crash left in run/ and serves on the same data', async () => {
  const children = descendantsOf(stack.child.pid ?? 0);
  expect(children.length).toBeGreaterThanOrEqual(2);
  stack.child.kill('SIGKILL');
  await waitFor(() => children.every((pid) => !alive(pid)), 10_000, 'every child of the killed stack to end');
  expect(processesMentioning(dirname(stack.configPath))).toEqual([]);

  // A child that outlived its parent (a host without setpriv): its pid file under run/children names it.
  const straggler = spawn('sleep', ['300'], { stdio: 'ignore', detached: true });
  straggler.unref();
  new PidFile(join(stack.dataDir, 'run', 'children', 'temporal.json'), createLogger('test')).record(straggler.pid ?? 0, 'sleep');
  stack = { ...stack, child: await stack.restart() };
  expect(alive(straggler.pid ?? 0)).toBe(false);
  // The pool worker counts as running once its new replica is Ready (the pool health may still show the killed one's record).
  await waitFor(async () => (await health(stack.apiUrl)).ready, 30_000, 'every supervised process to run');
}, 120_000);

test('issue 15: SIGTERM stops every process of the stack within the 30 s bound, exits 0 and releases the data dir; a task in flight resumes on the next start', async () => {
  const inFlight = await submit(stack.apiUrl, 'mock:supervised');
  const reader = readStream(`${stack.apiUrl}/v1/tasks/${inFlight}/stream`, { headers: {} });
  await waitFor(() => tokensOf(reader.events).indices.length >= 3, 10_000, 'the task to stream');
  reader.close();
  const children = descendantsOf(stack.child.pid ?? 0);
  const startedAt = Date.now();
  expect(await stopProcess(stack.child)).toBe(0);
  expect(Date.now() - startedAt).toBeLessThan(30_000);
  expect(children.filter(alive)).toEqual([]);
  expect(processesMentioning(dirname(stack.configPath))).toEqual([]);
  expect(existsSync(join(stack.dataDir, 'run', 'stack.lock'))).toBe(false);

  stack = { ...stack, child: await stack.restart() };
  const resumed = await readStream(`${stack.apiUrl}/v1/tasks/${inFlight}/stream`, { headers: {} }).finished;
  expect(resumed.at(-1)?.event).toBe('end');
  expect(tokensOf(resumed).indices).toEqual(Array.from({ length: TOKENS }, (_unused, index) => index));
}, 120_000);
