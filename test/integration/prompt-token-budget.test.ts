import OpenAI from 'openai';
import { request } from 'undici';
import { internalAuthHeaders } from '../../activities/internal-auth';
import { ensureLlamaServer } from '../../cli/llama-server-build';
import { ensureTinyModel } from '../../cli/model-artifacts';
import { taskWorkflowId } from '../../core/ids';
import { PROVISION_TIMEOUT_MS, cpuReplicaOptions, llamaServerPool, postTask } from '../support/llama-server-pool';
import { parsePrometheusText } from '../support/prometheus-text';
import { readStream, waitFor } from '../support/sse-client';
import { startTestStack, taskRequest, waitForReadyReplicas, type TestStack } from '../support/stack';

/**
 * ORCH-3015 / OC-CORE-1021 / OC-CTRL-2010: the token budget (prompt + max_tokens ≤ ctx) is checked before
 * admission, with the prompt counted by the pool's own tokenizer — here llama-server with the real tiny
 * model (SmolLM2-135M-Instruct, a byte-level BPE), on a pool whose ctx is only 256 tokens.
 */
const MODEL = 'smollm2-135m-instruct-q4_1';
const CTX = 256;
let stack: TestStack;
let client: OpenAI;

beforeAll(async () => {
  await ensureLlamaServer();
  await ensureTinyModel();
  stack = await startTestStack({ ctx: CTX, inProcessReplicas: 0, custom: llamaServerPool({ slots: 1 }, { ref: MODEL, source: { kind: 'pypi-smollm2' } }), replicaOptions: cpuReplicaOptions });
  await stack.addPoolReplica(0);
  await waitForReadyReplicas(stack, 1);
  client = new OpenAI({ baseURL: `${stack.url}/v1`, apiKey: stack.apiKeys.tenantA, maxRetries: 0 });
}, PROVISION_TIMEOUT_MS);
afterAll(async () => {
  await stack?.stop();
});

/** ~140 tokens of English: far past what its bytes could leave for any max_tokens in a 256-token ctx. */
const PROMPT = 'The quick brown fox jumps over the lazy dog while the queue keeps every task in order. '.repeat(8);

/** The prompt's tokens as the replica counts them for admission (its fast-start listener, internal token). */
async function replicaCount(body: Record<string, unknown>): Promise<number> {
  const url = stack.gateway.replicas.replicas(stack.poolId).find((replica) => replica.ready)?.fast_start_url;
  if (typeof url !== 'string') throw new Error('no Ready replica with a listener');
  const response = await request(`${url}/internal/v1/tokenize`, { method: 'POST', headers: { 'content-type': 'application/json', ...internalAuthHeaders(stack.internalToken) }, body: JSON.stringify(body) });
  expect(response.statusCode).toBe(200);
  return ((await response.body.json()) as { prompt_tokens: number }).prompt_tokens;
}

async function scrape(name: string, labels: Record<string, string>): Promise<number> {
  const text = await request(`${stack.url}/metrics`).then((response) => response.body.text());
  return parsePrometheusText(text)
    .samples.filter((sample) => sample.name === name && Object.entries(labels).every(([key, value]) => sample.labels[key] === value))
    .reduce((sum, sample) => sum + sample.value, 0);
}

async function workflowExists(taskId: string): Promise<boolean> {
  try {
    await stack.client.workflow.getHandle(taskWorkflowId(taskId)).describe();
    return true;
  } catch (error) {
    if ((error as { name?: string }).name === 'WorkflowNotFoundError') return false;
    throw error;
  }
}

test('ORCH-3015 OC-CORE-1021 OC-CTRL-2010: POST /v1/tasks whose prompt tokens + max_tokens exceed ctx by one is refused 400 INVALID_PARAMS, and no workflow is started', async () => {
  const promptTokens = await replicaCount({ prompt: PROMPT });
  expect(promptTokens).toBeGreaterThan(100);
  const refusedBefore = await scrape('prompt_token_checks_total', { pool_id: stack.poolId, outcome: 'refused' });
  const body = taskRequest(stack, { prompt: PROMPT, ctx: CTX, max_tokens: CTX - promptTokens + 1 });
  const refused = await postTask(stack.url, body);
  expect(refused.statusCode).toBe(400);
  expect(refused.body).toMatchObject({ code: 'INVALID_PARAMS', retriable: false, pool_id: stack.poolId, message: expect.stringContaining(`the prompt is ${promptTokens} tokens`) });
  // Refused before the ledger and Temporal: no workflow under the task's id, nothing queued, no stream.
  expect(await workflowExists(String(body['task_id']))).toBe(false);
  expect(stack.gateway.hub.get(String(body['task_id']))).toBeUndefined();
  expect(await scrape('prompt_token_checks_total', { pool_id: stack.poolId, outcome: 'refused' })).toBe(refusedBefore + 1);
}, 60_000);

test('ORCH-3015 OC-CORE-1021 OC-CTRL-2010: the same prompt with max_tokens = ctx − its tokens is admitted and decodes to its end; the dispatch line\'s tokens_in is the count', async () => {
  const promptTokens = await replicaCount({ prompt: PROMPT });
  const body = taskRequest(stack, { prompt: PROMPT, ctx: CTX, max_tokens: CTX - promptTokens, deadline_ms: 120_000 });
  const admitted = await postTask(stack.url, body);
  expect(admitted.statusCode).toBe(202);
  const events = await readStream(`${stack.url}/v1/tasks/${String(body['task_id'])}/stream`).finished;
  const end = events.find((event) => event.event === 'end');
  expect(end).toBeDefined();
  expect(events.some((event) => event.event === 'error')).toBe(false);
  expect(end?.data['tokens_out']).toBeLessThanOrEqual(CTX - promptTokens);
  expect(await workflowExists(String(body['task_id']))).toBe(true);
  // The gateway's dispatch line (ORCH-3027; the replica logs one of its own, without tokens_in).
  const gatewayLine = (line: Record<string, unknown>): boolean => line['msg'] === 'task dispatched' && line['job_id'] === body['task_id'] && 'tokens_in' in line;
  await waitFor(() => stack.logs.lines().some(gatewayLine), 10_000, 'the dispatch line');
  const dispatched = stack.logs.lines().find(gatewayLine);
  expect(dispatched?.['tokens_in']).toBe(promptTokens);
}, 120_000);

test('ORCH-3015 (OpenAI /v1/completions): a prompt just under the budget is admitted, and llama-server\'s own prompt count (usage) is the replica\'s count', async () => {
  const promptTokens = await replicaCount({ prompt: PROMPT });
  const completion = await client.completions.create({ model: MODEL, prompt: PROMPT, max_tokens: CTX - promptTokens, seed: 3 });
  expect(completion.usage?.prompt_tokens).toBe(promptTokens);
  expect((completion.usage?.prompt_tokens ?? 0) + (completion.usage?.completion_tokens ?? 0)).toBeLessThanOrEqual(CTX);
}, 120_000);

test('ORCH-3015 (OpenAI chat): messages whose templated tokens + max_tokens exceed ctx get OpenAI\'s 400 context_length_exceeded, and nothing is enqueued', async () => {
  const messages = [{ role: 'user' as const, content: PROMPT }];
  const promptTokens = await replicaCount({ chat: messages });
  const enqueuedBefore = await scrape('tasks_enqueued_total', { pool_id: stack.poolId });
  const refusedBefore = await scrape('prompt_token_checks_total', { pool_id: stack.poolId, outcome: 'refused' });
  const error = await client.chat.completions.create({ model: MODEL, messages, max_tokens: CTX - promptTokens + 1 }).then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(OpenAI.BadRequestError);
  expect(error).toMatchObject({ status: 400, code: 'context_length_exceeded', type: 'invalid_request_error' });
  expect(await scrape('prompt_token_checks_total', { pool_id: stack.poolId, outcome: 'refused' })).toBe(refusedBefore + 1);
  expect(await scrape('tasks_enqueued_total', { pool_id: stack.poolId })).toBe(enqueuedBefore);
}, 60_000);

test('ORCH-3015 (OpenAI chat without max_tokens): the default is lowered to what the context leaves, not refused', async () => {
  const messages = [{ role: 'user' as const, content: PROMPT }];
  const promptTokens = await replicaCount({ chat: messages });
  const completion = await client.chat.completions.create({ model: MODEL, messages, seed: 5 });
  expect(completion.usage?.prompt_tokens).toBe(promptTokens);
  expect(completion.usage?.total_tokens).toBeLessThanOrEqual(CTX);
}, 120_000);
