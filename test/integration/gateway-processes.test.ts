import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { randomUUID } from 'node:crypto';
import { Agent, request } from 'undici';
import { poolReady, startNpmStack, stopProcess, type NpmStartStack } from '../support/npm-start';
import { waitFor } from '../support/sse-client';
import { temporalAddressForTests } from '../support/stack';
import { alive, descendantsOf, processesMentioning } from '../../chaos/process-table';

/**
 * `gateway.processes: 2` (issue 10 item 4): `npm start` runs two gateway processes on one port. Each
 * request may land on either; a stream read through the process that did not admit its task is relayed,
 * and SIGTERM stops every process of the stack. Also issue 15: one stack per data dir, no orphans.
 */
const START = resolve(__dirname, '..', '..', 'dist', 'cli', 'start.js');
let stack: NpmStartStack;
const lines: Record<string, unknown>[] = [];

beforeAll(async () => {
  stack = await startNpmStack({
    temporalAddress: temporalAddressForTests(),
    model: 'mock:gateways',
    engineRuntime: { slots: 4, ttft_ms: 5, inter_token_ms: 10 },
    gatewayProcesses: 2,
    onLogLine: (line) => lines.push(line),
  });
}, 90_000);

afterAll(async () => {
  await stopProcess(stack.child);
  stack.child.stdout?.destroy();
});

test('issue 15: a second npm start on the same data dir says where the running stack is and exits non-zero, starting nothing', async () => {
  const before = processesMentioning(stack.configPath).sort();
  const second = spawn(process.execPath, [START, '--config', stack.configPath], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, TEMPORAL_ADDRESS: temporalAddressForTests() } });
  let stderr = '';
  second.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8');
  });
  const code = await new Promise<number | null>((resolveExit) => second.once('exit', (exitCode) => resolveExit(exitCode)));
  expect(code).not.toBe(0);
  expect(stderr).toContain('already running');
  expect(stderr).toContain(stack.apiUrl);
  expect(stderr).toContain(`pid ${String(stack.child.pid)}`);
  // The running stack is untouched, and the refused start left nothing of its own running.
  expect(await poolReady(stack.apiUrl, stack.poolId)).toBe(true);
  expect(processesMentioning(stack.configPath).sort()).toEqual(before);
}, 30_000);

test('issue 10: two gateway processes share the port — tasks admitted by either stream in full through either, and SIGTERM stops the whole stack', async () => {
  const { apiUrl, poolId } = stack;
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
  expect(await stopProcess(stack.child)).toBe(0);
  // Stopped cleanly: the data dir's lock is released for the next start.
  expect(existsSync(join(stack.dataDir, 'run', 'stack.lock'))).toBe(false);
  expect(pids.filter(alive)).toEqual([]);
}, 90_000);

test('issue 15: npm start SIGKILLed — its gateway processes and its pool worker (with its engine) end within seconds', async () => {
  const killed = await startNpmStack({ temporalAddress: temporalAddressForTests(), model: 'mock:orphans', gatewayProcesses: 2 });
  const children = descendantsOf(killed.child.pid ?? 0);
  // Two gateway processes and a pool worker at least (the mock engine runs inside the pool worker).
  expect(children.length).toBeGreaterThanOrEqual(3);
  killed.child.kill('SIGKILL');
  await waitFor(() => children.every((pid) => !alive(pid)), 15_000, 'every child of the killed stack to end');
}, 90_000);

test('issue 15: started by npm (npm_lifecycle_event=start), the stack stops when npm itself is SIGKILLed — npm start left nothing behind', async () => {
  const probe = await startNpmStack({ temporalAddress: temporalAddressForTests(), model: 'mock:npm-parent' });
  await stopProcess(probe.child);
  // What `npm start` runs: npm → node dist/cli/start.js. A stand-in parent plays npm, so this needs no build.
  const npm = spawn(
    process.execPath,
    ['-e', `require('node:child_process').spawn(process.execPath, [${JSON.stringify(START)}, '--config', ${JSON.stringify(probe.configPath)}], { stdio: 'ignore', env: { ...process.env, npm_lifecycle_event: 'start' } }); setInterval(() => undefined, 1 << 30);`],
    { stdio: 'ignore', env: { ...process.env, TEMPORAL_ADDRESS: temporalAddressForTests(), LOG_LEVEL: 'warn' } },
  );
  await waitFor(() => poolReady(probe.apiUrl, probe.poolId), 60_000, 'the stack under the stand-in npm to serve');
  const stack = descendantsOf(npm.pid ?? 0);
  expect(stack.length).toBeGreaterThanOrEqual(2);
  npm.kill('SIGKILL');
  await waitFor(() => stack.every((pid) => !alive(pid)), 20_000, 'the stack to stop after npm was killed');
}, 120_000);
