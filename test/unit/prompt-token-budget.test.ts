import pino from 'pino';
import { fitsByBound, PROMPT_TOKENS_OVER_BYTES, promptTokenBound, PromptTokenBudget } from '../../api/admission/prompt-token-budget';
import { OrchMetrics } from '../../api/observability/metrics';
import { parseConfig, type PoolConfig } from '../../core/config';
import type { ReplicaStatus } from '../../core/replica-status';
import { TaskRequestSchema, type TaskRequest } from '../../core/task-request';
import { createLlamaCppAdapter, type LlamaCppAdapter } from '../../gpu-workers/engines/llamacpp/llamacpp-adapter';
import { startMockEngine, type MockEngine } from '../../gpu-workers/engines/mock-llamacpp/mock-engine';
import { countPromptTokens, mockTokenize } from '../../gpu-workers/engines/mock-llamacpp/mock-vocabulary';
import { FastStartServer, type FastStartHandler, type PromptToCount } from '../../gpu-workers/fast-start/fast-start-server';
import { replicaStatusFixture } from '../support/replica-status-fixture';
import { parsePrometheusText } from '../support/prometheus-text';

/**
 * ORCH-3015 / OC-CORE-1021 / OC-CTRL-2010 in the gateway: when a prompt is counted (only past its byte
 * bound, or a chat), by which replica, and what a count that does not fit, or no count at all, does. A real
 * fast-start listener answers, its counts from the mock engine's tokenizer through the llama.cpp adapter.
 */
const TOKEN = 'internal-token-for-unit-tests';
const logger = pino({ level: 'silent' });
let engine: MockEngine;
let adapter: LlamaCppAdapter;
let listener: FastStartServer;
/** What the replica was asked to count, in order. */
const asked: PromptToCount[] = [];
/** Set by a test to make the replica's count hang (a stalled engine). */
let stall = false;

const handler: FastStartHandler = {
  start: () => ({ accepted: false, reason: 'not in this test' }),
  withdraw: () => false,
  outcome: () => undefined,
  // As the pool worker's (queue-poller.ts): a chat goes through the engine's template first.
  async countPromptTokens(input) {
    asked.push(input);
    if (stall) await new Promise(() => undefined);
    const prompt = 'chat' in input ? await adapter.applyChatTemplate(input.chat) : input.prompt;
    return (await adapter.tokenize(prompt)).length;
  },
};

beforeAll(async () => {
  engine = await startMockEngine({ ttftMs: 1, interTokenMs: 1 });
  adapter = createLlamaCppAdapter({ baseUrl: engine.url });
  listener = await FastStartServer.listen('127.0.0.1', TOKEN, logger);
  listener.serve(handler);
});
afterAll(async () => {
  await listener.close();
  await adapter.close();
  await engine.close();
});
const budgets: PromptTokenBudget[] = [];
beforeEach(() => {
  asked.length = 0;
  stall = false;
  listener.serve(handler);
});
afterEach(async () => {
  await Promise.all(budgets.splice(0).map((budget) => budget.close()));
});

const pool: PoolConfig = (() => {
  const { config } = parseConfig({ pools: [{ id: 'p', engine: 'llamacpp', model: 'm', devices: [0], engine_runtime: { kind: 'mock', slots: 1 } }] });
  const entry = config.pools[0];
  if (!entry) throw new Error('no pool');
  return entry;
})();

function task(prompt: string, maxTokens: number, ctx = 1024): TaskRequest {
  return TaskRequestSchema.parse({ task_id: crypto.randomUUID(), session_id: crypto.randomUUID(), workload: 'completion', model_ref: 'm', engine: 'llamacpp', ctx, priority: 'interactive', prompt, max_tokens: maxTokens, deadline_ms: 60_000 });
}

function budgetOver(replicas: ReplicaStatus[], options: { token?: string; timeoutMs?: number } = {}): { budget: PromptTokenBudget; metrics: OrchMetrics } {
  const metrics = new OrchMetrics();
  const budget = new PromptTokenBudget({ replicas: { replicas: () => replicas }, internalToken: options.token ?? TOKEN, metrics, poolIds: ['p'], logger, timeoutMs: options.timeoutMs });
  budgets.push(budget);
  return { budget, metrics };
}

const ready = (overrides: Partial<ReplicaStatus> = {}): ReplicaStatus => replicaStatusFixture('p-r0', { pool_id: 'p', model_ref: 'm', fast_start_url: listener.url, ...overrides });

async function outcomes(metrics: OrchMetrics): Promise<Record<string, number>> {
  const { samples } = parsePrometheusText(await metrics.registry.metrics());
  return Object.fromEntries(samples.filter((sample) => sample.name === 'prompt_token_checks_total').map((sample) => [sample.labels['outcome'] ?? '', sample.value]));
}

/** 300 one-letter words: 600 bytes, 301 tokens on the mock (a word each, and BOS). */
const LONG = 'a '.repeat(300);

describe('ORCH-3015: the byte bound', () => {
  test('a prompt is at most one token per UTF-8 byte plus the tokenizer\'s specials; only past that bound is it counted', () => {
    expect(promptTokenBound(0)).toBe(PROMPT_TOKENS_OVER_BYTES);
    // é is 2 bytes, 🦙 is 4: the bound is in bytes, not characters.
    expect(promptTokenBound(Buffer.byteLength('é🦙', 'utf8'))).toBe(6 + PROMPT_TOKENS_OVER_BYTES);
    const ctx = 1024;
    const maxTokens = 100;
    const largestUncounted = ctx - maxTokens - PROMPT_TOKENS_OVER_BYTES;
    expect(fitsByBound(largestUncounted, maxTokens, ctx)).toBe(true);
    expect(fitsByBound(largestUncounted + 1, maxTokens, ctx)).toBe(false);
  });

  test('the mock engine counts a prompt on POST /tokenize as its completion does (tokens_evaluated), BOS included', async () => {
    for (const prompt of ['', 'x', '  two   words ', LONG, 'tab\tand\nnewline', 'café naïve 🦙']) {
      expect(mockTokenize(prompt, true)).toHaveLength(countPromptTokens(prompt));
      expect(mockTokenize(prompt, false)).toHaveLength(countPromptTokens(prompt) - 1);
    }
    const prompt = 'Write a haiku about queues.';
    const stream = adapter.complete({ prompt, maxTokens: 2, seed: 1, samplerProfile: 'v1' }, new AbortController().signal);
    let step = await stream.next();
    while (!step.done) step = await stream.next();
    expect(await adapter.tokenize(prompt)).toHaveLength(step.value.tokensIn);
  });
});

describe('ORCH-3015 OC-CORE-1021 OC-CTRL-2010: the check before admission', () => {
  test('a prompt within its byte bound is admitted without asking any replica', async () => {
    const { budget, metrics } = budgetOver([ready()]);
    const request = task('Write a haiku about queues.', 900);
    await expect(budget.check(pool, request)).resolves.toEqual({ request });
    expect(asked).toEqual([]);
    expect(await outcomes(metrics)).toEqual({ bound: 1, counted: 0, refused: 0, unchecked: 0 });
  });

  test('past the bound the replica counts it: it fits, and the count comes back for tokens_in', async () => {
    const { budget, metrics } = budgetOver([ready()]);
    const request = task(LONG, 1024 - 301);
    await expect(budget.check(pool, request)).resolves.toEqual({ request, promptTokens: 301 });
    expect(asked).toEqual([{ prompt: LONG }]);
    expect((await outcomes(metrics))['counted']).toBe(1);
  });

  test('one token over ctx is refused with INVALID_PARAMS (OpenAI: context_length_exceeded), naming the counts', async () => {
    const { budget, metrics } = budgetOver([ready()]);
    await expect(budget.check(pool, task(LONG, 1024 - 301 + 1))).rejects.toMatchObject({
      code: 'INVALID_PARAMS',
      message: expect.stringMatching(/301 tokens.*max_tokens is 724.*1025 tokens, over ctx 1024/),
      details: expect.objectContaining({ poolId: 'p', openAiCode: 'context_length_exceeded' }),
    });
    expect((await outcomes(metrics))['refused']).toBe(1);
  });

  test('a max_tokens that was only a default (OpenAI without max_tokens) is lowered to what the context leaves; a prompt that fills ctx is still refused', async () => {
    const { budget } = budgetOver([ready()]);
    const lowered = await budget.check(pool, task(LONG, 1000), undefined, true);
    expect(lowered.request.max_tokens).toBe(1024 - 301);
    await expect(budget.check(pool, task(LONG, 1, 301), undefined, true)).rejects.toMatchObject({ code: 'INVALID_PARAMS' });
  });

  test('a chat is always counted, through the engine\'s template, however short', async () => {
    const { budget } = budgetOver([ready()]);
    const chat = [{ role: 'user' as const, content: 'hi' }];
    const counted = await budget.check(pool, task('', 16), chat);
    expect(asked).toEqual([{ chat }]);
    // The mock's template, "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n", is 3 words; and BOS.
    expect(counted.promptTokens).toBe(4);
  });

  test('no replica to count (not Ready, another model, no listener, wrong token, stalled): admitted unchecked, never refused', async () => {
    listener.serve(undefined);
    const notReady = budgetOver([ready()]);
    await expect(notReady.budget.check(pool, task(LONG, 1000))).resolves.toEqual({ request: expect.objectContaining({ max_tokens: 1000 }) });
    expect((await outcomes(notReady.metrics))['unchecked']).toBe(1);
    listener.serve(handler);

    const none = budgetOver([ready({ ready: false, state: 'unready' }), ready({ replica_id: 'p-r1', model_ref: 'other' }), ready({ replica_id: 'p-r2', fast_start_url: null })]);
    await expect(none.budget.check(pool, task(LONG, 1000))).resolves.toEqual({ request: expect.objectContaining({ max_tokens: 1000 }) });
    expect(asked).toEqual([]);

    const wrongToken = budgetOver([ready()], { token: 'not-the-token' });
    await expect(wrongToken.budget.check(pool, task(LONG, 1000))).resolves.not.toHaveProperty('promptTokens');
    expect(asked).toEqual([]);

    stall = true;
    const stalled = budgetOver([ready()], { timeoutMs: 100 });
    await expect(stalled.budget.check(pool, task(LONG, 1000))).resolves.not.toHaveProperty('promptTokens');
    expect((await outcomes(stalled.metrics))['unchecked']).toBe(1);
  });

  test('a replica that failed is left alone for a while: the next task asks another', async () => {
    listener.serve(undefined);
    const replicas = [ready({ slots_busy: 0 })];
    const { budget } = budgetOver(replicas);
    await budget.check(pool, task(LONG, 500));
    listener.serve(handler);
    // p-r0 (the less loaded) refused a moment ago; p-r1 (the same listener here) is asked instead, and answers.
    replicas.push(ready({ replica_id: 'p-r1', slots_busy: 1 }));
    await expect(budget.check(pool, task(LONG, 500))).resolves.toMatchObject({ promptTokens: 301 });
    expect(asked).toHaveLength(1);
  });
});
