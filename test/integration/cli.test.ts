import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { startNpmStack, stopProcess, type NpmStartStack } from '../support/npm-start';
import { temporalAddressForTests } from '../support/stack';

/**
 * Issue 11 item 4: the `llama-orch` CLI (the built bin, as `npx llama-orch` runs it) against a stack
 * started by `npm start`: submit streams tokens, tasks lists them from Temporal visibility with their
 * state, pools shows health, drain and resume follow the operation to its end, keys are created, listed
 * and revoked — people's output and `--json`.
 */
const CLI = resolve(__dirname, '..', '..', 'dist', 'cli', 'orch-cli', 'cli-main.js');
let stack: NpmStartStack;

beforeAll(async () => {
  stack = await startNpmStack({ temporalAddress: temporalAddressForTests(), model: 'mock:cli', engineRuntime: { slots: 2, ttft_ms: 5, inter_token_ms: 5 } });
}, 90_000);
afterAll(async () => {
  await stopProcess(stack.child);
});

async function cli(...args: string[]): Promise<{ stdout: string; stderr: string }> {
  return await promisify(execFile)(process.execPath, [CLI, ...args, '--config', stack.configPath, '--url', stack.apiUrl], {
    env: { ...process.env, TEMPORAL_ADDRESS: temporalAddressForTests() },
    timeout: 60_000,
  });
}

test('issue 11: submit streams the tokens to stdout; tasks lists the task from Temporal visibility as completed', async () => {
  const submitted = await cli('submit', 'Hello', 'there', '--max-tokens', '8', '--seed', '3');
  expect(submitted.stdout.length).toBeGreaterThan(0);
  const taskId = /task ([0-9a-f-]{36}) admitted/.exec(submitted.stderr)?.[1] ?? '';
  expect(submitted.stderr).toContain('[done: 8 tokens');
  const events = (await cli('submit', 'Hello', 'there', '--max-tokens', '8', '--seed', '3', '--json')).stdout.trim().split('\n').map((line) => JSON.parse(line) as { event: string; data: { t?: string } });
  // The same seed and prompt: the JSON events carry the same text the terminal got.
  expect(events.filter((event) => event.event === 'token').map((event) => event.data.t).join('')).toBe(submitted.stdout);
  const tasks = JSON.parse((await cli('tasks', '--json', '--limit', '50')).stdout) as { task_id: string; state: string; pool: string }[];
  expect(tasks.find((task) => task.task_id === taskId)).toMatchObject({ state: 'completed', pool: stack.poolId });
  expect((await cli('tasks')).stdout).toMatch(/^TASK_ID\s+STATE\s+POOL/);
}, 60_000);

test('issue 11: pools shows the health table; drain and resume follow the operation to its end', async () => {
  const pools = JSON.parse((await cli('pools', '--json')).stdout) as { pool: string; ready: string; mode: string }[];
  expect(pools).toEqual([expect.objectContaining({ pool: stack.poolId, ready: '1/1', mode: 'serving' })]);
  const drained = await cli('drain', stack.poolId, '--deadline-ms', '5000');
  expect(drained.stdout).toContain(`drain of pool ${stack.poolId}: completed`);
  expect(drained.stderr).toContain('drained');
  const resumed = JSON.parse((await cli('resume', stack.poolId, '--json')).stdout) as { kind: string; outcome: string };
  expect(resumed).toMatchObject({ kind: 'resume', outcome: 'completed' });
}, 60_000);

test('issue 11: keys create shows a key once and stores only its hash; list and revoke', async () => {
  const created = JSON.parse((await cli('keys', 'create', '--tenant', 'acme', '--scopes', 'data,control', '--json')).stdout) as { id: string; key: string; keys_file: string };
  expect(created.key).toMatch(/^lok_/);
  const listed = JSON.parse((await cli('keys', 'list', '--json')).stdout) as { id: string; tenant: string; sha256: string }[];
  expect(listed).toEqual([expect.objectContaining({ id: created.id, tenant: 'acme', scopes: 'data,control' })]);
  expect(JSON.stringify(listed)).not.toContain(created.key);
  await cli('keys', 'revoke', created.id);
  expect(JSON.parse((await cli('keys', 'list', '--json')).stdout)).toEqual([]);
  await expect(cli('cancel', '00000000-0000-4000-8000-000000000000')).rejects.toMatchObject({ code: 4 });
}, 60_000);
