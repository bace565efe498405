import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { request } from 'undici';
import { stringify } from 'yaml';
import { freePort } from '../../cli/free-port';
import { boundToParent } from '../../platform/parent-death';
import { poolReady, stopProcess } from '../support/npm-start';
import { readStream, tokensOf, waitFor } from '../support/sse-client';
import { temporalAddressForTests } from '../support/stack';

/**
 * Issue 12 item 4: `npm start` (the built dist/cli/start.js) serves pools of `engine: tgi`, both ways a TGI is
 * obtained: `mock` (the TGI test double in the pool worker) and `external` (a URL; here the double's own CLI,
 * standing in for a TGI server). Health and logs say the adapter is unverified against a real TGI, and that a double
 * serves — also the external one, which announces itself in /info.
 */
const DIST = resolve(__dirname, '..', '..', 'dist');
const lines: Record<string, unknown>[] = [];
let stack: ChildProcess | undefined;
let external: ChildProcess | undefined;
let apiUrl: string;

async function startTgiDoubleCli(): Promise<{ child: ChildProcess; url: string }> {
  const command = boundToParent(process.execPath, [join(DIST, 'gpu-workers', 'engines', 'tgi-double', 'tgi-double-main.js'), '--port', '0', '--max-concurrent-requests', '3'], 'SIGTERM');
  const child = spawn(command.command, command.args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const first = await new Promise<string>((resolveLine, reject) => {
    createInterface({ input: child.stdout }).once('line', resolveLine);
    child.once('exit', () => reject(new Error(`the TGI double exited before listening: ${stderr}`)));
  });
  expect(stderr).toContain('TGI TEST DOUBLE');
  return { child, url: (JSON.parse(first) as { url: string }).url };
}

beforeAll(async () => {
  const double = await startTgiDoubleCli();
  external = double.child;
  const directory = mkdtempSync(join(tmpdir(), 'llama-orch-tgi-start-'));
  const port = await freePort();
  apiUrl = `http://127.0.0.1:${port}`;
  const configPath = join(directory, 'config.yaml');
  const pool = { ctx: 2048, devices: [0], replicas: 1 };
  writeFileSync(
    configPath,
    stringify({
      data_dir: join(directory, 'data'),
      auth: { mode: 'disabled' },
      gateway: { host: '127.0.0.1', port },
      pools: [
        { id: 'tgi-mock', engine: 'tgi', model: 'mock:tgi', ...pool, engine_runtime: { kind: 'mock', slots: 2, ttft_ms: 5, inter_token_ms: 5 } },
        { id: 'tgi-external', engine: 'tgi', model: 'tgi-external-model', ...pool, engine_runtime: { kind: 'external', url: double.url } },
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
  await waitFor(async () => (await poolReady(apiUrl, 'tgi-mock')) && (await poolReady(apiUrl, 'tgi-external')), 90_000, 'npm start to serve both TGI pools');
}, 120_000);

afterAll(async () => {
  await stopProcess(stack);
  await stopProcess(external);
});

test.each([
  ['tgi-mock', 'mock:tgi'],
  ['tgi-external', 'tgi-external-model'],
])('ORCH-3056 OC-ADAPT-5050: npm start serves the TGI pool %s — a task streams, and health says a test double serves and the adapter is unverified', async (poolId, model) => {
  const health = (await (await request(`${apiUrl}/v1/pools/${poolId}/health`)).body.json()) as {
    ready: boolean;
    metrics: { mock_engine?: boolean; warning?: string; adapter_warning?: string; replicas: { engine_version: string }[] };
  };
  expect(health.ready).toBe(true);
  expect(health.metrics.mock_engine).toBe(true);
  expect(health.metrics.warning).toContain('test double of tgi');
  expect(health.metrics.adapter_warning).toContain('UNVERIFIED against a real TGI');
  expect(health.metrics.replicas[0]?.engine_version).toBe('tgi-double-0.1.0');

  const taskId = randomUUID();
  const admitted = await request(`${apiUrl}/v1/tasks`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ task_id: taskId, session_id: randomUUID(), workload: 'completion', model_ref: model, engine: 'tgi', ctx: 2048, priority: 'interactive', seed: 5, prompt: 'Tell me about queues.', max_tokens: 10, deadline_ms: 30_000 }),
  });
  await admitted.body.dump();
  expect(admitted.statusCode).toBe(202);
  const events = await readStream(`${apiUrl}/v1/tasks/${taskId}/stream`).finished;
  expect(events.at(-1)?.event).toBe('end');
  expect(tokensOf(events).indices).toHaveLength(10);
});

test('the pool workers log, for each TGI pool, that the adapter is unverified, and for the mock pool that a TGI test double serves', () => {
  const messages = lines.map((line) => String(line['msg']));
  expect(messages.filter((msg) => msg.includes('UNVERIFIED against a real TGI server')).length).toBeGreaterThanOrEqual(2);
  expect(messages.some((msg) => msg.startsWith('TGI TEST DOUBLE'))).toBe(true);
});
