import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import OpenAI from 'openai';
import { ensureLlamaServer } from '../../cli/llama-server-build';
import { ensureTinyModel } from '../../cli/model-artifacts';
import { taskWorkflowId } from '../../core/ids';
import type { TaskResult } from '../../core/task-workflow-contract';
import { PROVISION_TIMEOUT_MS, cpuReplicaOptions, llamaServerPool } from '../support/llama-server-pool';
import { ensurePythonOpenAi } from '../support/python-openai';
import { waitFor } from '../support/sse-client';
import { startTestStack, type TestStack } from '../support/stack';

/**
 * Issue 11: the OpenAI-compatible surface, called the way users call it — the official `openai` packages
 * for TypeScript (npm) and Python (PyPI) with their default headers — against a real llama-server with
 * the real tiny model (SmolLM2-135M-Instruct, whose chat template llama-server applies).
 */
const MODEL = 'smollm2-135m-instruct-q4_1';
let stack: TestStack;
let client: OpenAI;
let python: string;

beforeAll(async () => {
  await ensureLlamaServer();
  await ensureTinyModel();
  python = await ensurePythonOpenAi();
  // One slot: the deterministic profile, so the same seed gives the same text streamed or not.
  stack = await startTestStack({ ctx: 2048, inProcessReplicas: 0, custom: llamaServerPool({ slots: 1 }, { ref: MODEL, source: { kind: 'pypi-smollm2' } }), replicaOptions: cpuReplicaOptions });
  await stack.addPoolReplica(0);
  client = new OpenAI({ baseURL: `${stack.url}/v1`, apiKey: stack.apiKeys.tenantA, maxRetries: 0 });
}, PROVISION_TIMEOUT_MS);
afterAll(async () => {
  await stack?.stop();
});

const ask = [{ role: 'user' as const, content: 'Name three colours.' }];

async function workflowResult(taskId: string): Promise<TaskResult> {
  return (await stack.client.workflow.getHandle(taskWorkflowId(taskId)).result()) as TaskResult;
}

test('issue 11: GET /v1/models through the client lists the configured model with its pool', async () => {
  const models = await client.models.list();
  expect(models.data.map((model) => model.id)).toContain(MODEL);
  expect(models.data.find((model) => model.id === MODEL)).toMatchObject({ object: 'model', pools: [stack.poolId] });
});

test('issue 11: a chat completion (TypeScript client, not streamed) is an ordinary durable task — chat template applied by llama-server, real usage, findable by TaskId', async () => {
  const { data: completion, response } = await client.chat.completions.create({ model: MODEL, messages: ask, max_tokens: 24, seed: 7 }).withResponse();
  const taskId = response.headers.get('x-orch-task-id') ?? '';
  expect(completion.id).toBe(`chatcmpl-${taskId}`);
  const text = completion.choices[0]?.message.content ?? '';
  expect(text.length).toBeGreaterThan(0);
  expect(['stop', 'length']).toContain(completion.choices[0]?.finish_reason);
  // The engine's counts: the templated prompt is longer than the user's words, and the output is what streamed.
  expect(completion.usage?.prompt_tokens).toBeGreaterThan(10);
  expect(completion.usage?.completion_tokens).toBeGreaterThan(0);
  expect(completion.usage?.completion_tokens).toBeLessThanOrEqual(24);
  expect(completion.usage?.total_tokens).toBe((completion.usage?.prompt_tokens ?? 0) + (completion.usage?.completion_tokens ?? 0));
  expect(completion.system_fingerprint).toMatch(/^b\d+/);
  // The workflow's durable result holds the same text (what the Web UI shows).
  const result = await workflowResult(taskId);
  expect(result.text).toBe(text);
  expect(result.tokensOut).toBe(completion.usage?.completion_tokens);
  const description = await stack.client.workflow.getHandle(taskWorkflowId(taskId)).describe();
  expect(description.searchAttributes['TaskId']).toEqual([taskId]);
  expect(description.searchAttributes['Priority']).toEqual(['interactive']);
}, 120_000);

test('issue 11: streamed with include_usage (TypeScript client) — the same text as unstreamed for the same seed, then usage, finish_reason once', async () => {
  const whole = await client.chat.completions.create({ model: MODEL, messages: ask, max_tokens: 24, seed: 11 });
  const stream = await client.chat.completions.create({ model: MODEL, messages: ask, max_tokens: 24, seed: 11, stream: true, stream_options: { include_usage: true } });
  let text = '';
  const finishReasons: string[] = [];
  let usage: OpenAI.CompletionUsage | undefined;
  for await (const chunk of stream) {
    text += chunk.choices[0]?.delta.content ?? '';
    const reason = chunk.choices[0]?.finish_reason;
    if (reason) finishReasons.push(reason);
    if (chunk.usage) usage = chunk.usage;
  }
  expect(text).toBe(whole.choices[0]?.message.content);
  expect(finishReasons).toEqual([whole.choices[0]?.finish_reason]);
  expect(usage).toEqual(whole.usage);
}, 120_000);

test('issue 11: a text completion, a stop sequence the engine honours, and a batch task picked by header', async () => {
  const plain = await client.completions.create({ model: MODEL, prompt: 'The sky is', max_tokens: 16, seed: 5 });
  const text = plain.choices[0]?.text ?? '';
  const words = text.trim().split(/\s+/);
  expect(words.length).toBeGreaterThan(2);
  // Stop at the third word of the same generation: the text ends before it, finish_reason stop.
  const stopWord = words[2] ?? '';
  const { data: stopped, response } = await client.completions
    .create({ model: MODEL, prompt: 'The sky is', max_tokens: 16, seed: 5, stop: [stopWord] }, { headers: { 'x-orch-priority': 'batch' } })
    .withResponse();
  expect(stopped.choices[0]?.finish_reason).toBe('stop');
  expect(text.startsWith(stopped.choices[0]?.text ?? '\u0000')).toBe(true);
  expect(stopped.choices[0]?.text).not.toContain(stopWord);
  const taskId = response.headers.get('x-orch-task-id') ?? '';
  const description = await stack.client.workflow.getHandle(taskWorkflowId(taskId)).describe();
  expect(description.searchAttributes['Priority']).toEqual(['batch']);
}, 120_000);

test('issue 11: a client that aborts mid-stream cancels its task — the workflow ends cancelled, no engine work continues', async () => {
  const controller = new AbortController();
  const { data: stream, response } = await client.chat.completions
    .create({ model: MODEL, messages: [{ role: 'user', content: 'Write a long story about the sea.' }], max_tokens: 1500, stream: true }, { signal: controller.signal })
    .withResponse();
  const taskId = response.headers.get('x-orch-task-id') ?? '';
  let chunks = 0;
  try {
    for await (const chunk of stream) {
      if (chunk.choices[0]?.delta.content) chunks += 1;
      if (chunks === 3) controller.abort();
    }
  } catch (error) {
    // Depending on timing the client ends the iteration quietly or with an abort error; both are an abort.
    expect(String(error)).toMatch(/abort/i);
  }
  expect(chunks).toBe(3);
  const result = await workflowResult(taskId);
  expect(result.state).toBe('cancelled');
  expect(result.tokensOut).toBeLessThan(1500);
  // The slot is free again: the next request is served at once.
  const next = await client.chat.completions.create({ model: MODEL, messages: ask, max_tokens: 4 });
  expect(next.choices[0]?.message.content?.length).toBeGreaterThan(0);
}, 120_000);

test('issue 11: errors come in OpenAI\'s shape with the contract\'s code inside — the client raises its typed errors', async () => {
  await expect(client.chat.completions.create({ model: 'no-such-model', messages: ask })).rejects.toMatchObject({ status: 404, code: 'INVALID_PARAMS', type: 'not_found_error' });
  await expect(client.chat.completions.create({ model: MODEL, messages: ask, n: 2 })).rejects.toBeInstanceOf(OpenAI.BadRequestError);
  await expect(
    client.chat.completions.create({ model: MODEL, messages: ask, tools: [{ type: 'function', function: { name: 'f', parameters: {} } }] }),
  ).rejects.toMatchObject({ status: 400, message: expect.stringContaining('unsupported parameter: tools') });
  const stranger = new OpenAI({ baseURL: `${stack.url}/v1`, apiKey: 'sk-not-a-key', maxRetries: 0 });
  await expect(stranger.chat.completions.create({ model: MODEL, messages: ask })).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
});

const PYTHON_CHECK = String.raw`
import json, sys
from openai import OpenAI
client = OpenAI(base_url=sys.argv[1] + "/v1", api_key=sys.argv[2], max_retries=0)
model = sys.argv[3]
ask = [{"role": "user", "content": "Name three colours."}]
whole = client.chat.completions.create(model=model, messages=ask, max_tokens=24, seed=7)
text, reasons, usage = "", [], None
for chunk in client.chat.completions.create(model=model, messages=ask, max_tokens=24, seed=7, stream=True, stream_options={"include_usage": True}):
    if chunk.choices:
        text += chunk.choices[0].delta.content or ""
        if chunk.choices[0].finish_reason:
            reasons.append(chunk.choices[0].finish_reason)
    if chunk.usage:
        usage = chunk.usage.model_dump()
raw = client.chat.completions.with_raw_response.create(model=model, messages=[{"role": "user", "content": "Write a long story about the sea."}], max_tokens=1500, stream=True)
aborted_task = raw.headers.get("x-orch-task-id")
stream = raw.parse()
for index, chunk in enumerate(stream):
    if index == 3:
        break
stream.close()
print(json.dumps({"whole": whole.choices[0].message.content, "whole_usage": whole.usage.model_dump(), "finish": whole.choices[0].finish_reason,
                  "streamed": text, "reasons": reasons, "usage": usage, "aborted_task": aborted_task}))
`;

test('issue 11: the official Python client (PyPI openai) streams and unstreams a chat completion, and closing its stream cancels the task', async () => {
  const { stdout } = await promisify(execFile)(python, ['-c', PYTHON_CHECK, stack.url, stack.apiKeys.tenantA, MODEL], { timeout: 120_000 });
  const answer = JSON.parse(stdout) as { whole: string; whole_usage: unknown; finish: string; streamed: string; reasons: string[]; usage: unknown; aborted_task: string };
  expect(answer.whole.length).toBeGreaterThan(0);
  expect(answer.streamed).toBe(answer.whole);
  expect(answer.reasons).toEqual([answer.finish]);
  expect(answer.usage).toEqual(answer.whole_usage);
  let state = '';
  await waitFor(async () => {
    state = (await workflowResult(answer.aborted_task)).state;
    return true;
  }, 30_000, 'the aborted task to end');
  expect(state).toBe('cancelled');
}, 180_000);
