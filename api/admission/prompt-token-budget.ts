import type { Logger } from 'pino';
import { Agent } from 'undici';
import { z } from 'zod';
import type { PoolConfig } from '../../core/config';
import { ErrorCode, OrchError } from '../../core/errors';
import type { ChatMessage } from '../../core/generation-options';
import type { ReplicaStatus } from '../../core/replica-status';
import type { TaskRequest } from '../../core/task-request';
import { callReplicaListener } from '../replica-listener';
import type { OrchMetrics } from '../observability/metrics';
import type { ReplicaDirectory } from '../replica-directory';

/**
 * Tokens a tokenizer may produce beyond one per UTF-8 byte of the prompt. A token always covers at least
 * one byte of input, so the excess is what the tokenizer adds: BOS and EOS, and SentencePiece's leading
 * space. Measured on the 18 vocabularies of the pinned llama.cpp tree (BPE, SPM, WPM and UGM; 500–600
 * adversarial prompts each — whitespace runs, digits, emoji, combining and NFKC-expanding characters,
 * special-token text): at most 3 (UGM "." → BOS ▁ . EOS). Kept at 8 for margin; ADR 2026-12-07-prompt-token-budget.
 */
export const PROMPT_TOKENS_OVER_BYTES = 8;

/** The most tokens a prompt of `promptBytes` UTF-8 bytes can be (see PROMPT_TOKENS_OVER_BYTES). */
export function promptTokenBound(promptBytes: number): number {
  return promptBytes + PROMPT_TOKENS_OVER_BYTES;
}

/**
 * Whether a plain prompt fits the budget whatever its tokenizer (ORCH-3015): its token bound plus
 * max_tokens is within ctx, so counting it would change nothing and the replica is not asked.
 */
export function fitsByBound(promptBytes: number, maxTokens: number, ctx: number): boolean {
  return promptTokenBound(promptBytes) + maxTokens <= ctx;
}

/** What the check found: the request (max_tokens lowered where it was only a default) and the count, when counted. */
export interface PromptBudget {
  readonly request: TaskRequest;
  readonly promptTokens?: number | undefined;
}

export interface PromptTokenBudgetOptions {
  readonly replicas: Pick<ReplicaDirectory, 'replicas'>;
  readonly internalToken: string;
  readonly metrics: OrchMetrics;
  readonly poolIds: readonly string[];
  readonly logger: Logger;
  /** The whole count (every replica asked) ends by then; past it the task is admitted unchecked. Default 500 ms. */
  readonly timeoutMs?: number | undefined;
}

export const PROMPT_BUDGET_OUTCOMES = ['bound', 'counted', 'refused', 'unchecked'] as const;
type Outcome = (typeof PROMPT_BUDGET_OUTCOMES)[number];

const CountAnswerSchema = z.object({ prompt_tokens: z.int().min(0) });
/** A replica that failed to count is not asked again for this long: it may be gone or stalled. */
const FAILED_BACKOFF_MS = 5_000;
/** Replicas asked per task before the task is admitted unchecked. */
const MAX_TRIES = 2;

/**
 * ORCH-3015 / OC-CORE-1021 / OC-CTRL-2010: prompt tokens + max_tokens ≤ ctx, checked before a task is
 * enqueued, with the prompt counted by the pool's own tokenizer. The gateway never talks to engines: it
 * asks a Ready replica of the pool on its fast-start listener (`POST /internal/v1/tokenize`), one loopback
 * round trip, and only when the prompt's byte bound does not already fit (`fitsByBound`). A chat (OpenAI
 * messages) is always counted: its template's tokens are known only to the engine.
 *
 * When no replica answers in time the task is admitted unchecked (logged, `prompt_token_checks_total
 * {outcome="unchecked"}`): the engine still refuses a prompt that fills its context, on the stream, with
 * INVALID_PARAMS; refusing here would turn a slow side channel into an outage.
 */
export class PromptTokenBudget {
  private readonly dispatcher = new Agent({ connections: 16, keepAliveTimeout: 30_000 });
  private readonly leftAloneUntil = new Map<string, number>();
  private readonly timeoutMs: number;

  constructor(private readonly options: PromptTokenBudgetOptions) {
    this.timeoutMs = options.timeoutMs ?? 500;
    for (const poolId of options.poolIds) for (const outcome of PROMPT_BUDGET_OUTCOMES) options.metrics.inc('promptTokenChecks', { pool_id: poolId, outcome }, 0);
  }

  /**
   * Throws INVALID_PARAMS (OpenAI: `context_length_exceeded`) when the counted prompt and max_tokens do not
   * fit ctx. `maxTokensDefaulted`: max_tokens was not asked for (an OpenAI request without it), so it is
   * lowered to what the context leaves rather than refused, as OpenAI does.
   */
  async check(pool: PoolConfig, task: TaskRequest, chat?: readonly ChatMessage[], maxTokensDefaulted = false): Promise<PromptBudget> {
    if (chat === undefined && fitsByBound(Buffer.byteLength(task.prompt ?? '', 'utf8'), task.max_tokens, task.ctx)) {
      this.count(pool.id, 'bound');
      return { request: task };
    }
    const promptTokens = await this.countOnReplica(pool.id, task, chat);
    if (promptTokens === undefined) {
      this.count(pool.id, 'unchecked');
      return { request: task };
    }
    if (promptTokens + task.max_tokens <= task.ctx) {
      this.count(pool.id, 'counted');
      return { request: task, promptTokens };
    }
    if (maxTokensDefaulted && promptTokens < task.ctx) {
      this.count(pool.id, 'counted');
      return { request: { ...task, max_tokens: task.ctx - promptTokens }, promptTokens };
    }
    this.count(pool.id, 'refused');
    throw new OrchError(
      ErrorCode.INVALID_PARAMS,
      `the prompt is ${promptTokens} tokens and max_tokens is ${task.max_tokens}: ${promptTokens + task.max_tokens} tokens, over ctx ${task.ctx}; shorten the prompt or lower max_tokens`,
      { engine: task.engine, poolId: pool.id, openAiCode: 'context_length_exceeded' },
    );
  }

  /** Idempotent, like the fast starter's. */
  close(): Promise<void> {
    if (this.dispatcher.closed || this.dispatcher.destroyed) return Promise.resolve();
    return this.dispatcher.close();
  }

  private count(poolId: string, outcome: Outcome): void {
    this.options.metrics.inc('promptTokenChecks', { pool_id: poolId, outcome });
  }

  private async countOnReplica(poolId: string, task: TaskRequest, chat: readonly ChatMessage[] | undefined): Promise<number | undefined> {
    const deadline = AbortSignal.timeout(this.timeoutMs);
    const body = JSON.stringify(chat === undefined ? { prompt: task.prompt ?? '' } : { chat });
    const candidates = this.candidates(poolId, task.model_ref);
    for (const replica of candidates.slice(0, MAX_TRIES)) {
      const url = replica.fast_start_url;
      if (typeof url !== 'string') continue;
      try {
        const response = await callReplicaListener(url, { method: 'POST', path: '/internal/v1/tokenize', body, internalToken: this.options.internalToken, dispatcher: this.dispatcher, signal: deadline });
        const answer = CountAnswerSchema.safeParse(response.body);
        if (response.statusCode === 200 && answer.success) return answer.data.prompt_tokens;
        this.leftAloneUntil.set(replica.replica_id, Date.now() + FAILED_BACKOFF_MS);
        this.options.logger.warn({ replica_id: replica.replica_id, status: response.statusCode, job_id: task.task_id }, 'prompt not counted by the replica');
      } catch (error) {
        this.leftAloneUntil.set(replica.replica_id, Date.now() + FAILED_BACKOFF_MS);
        this.options.logger.warn({ err: error, replica_id: replica.replica_id, job_id: task.task_id }, 'prompt not counted: replica unreachable or slow');
        if (deadline.aborted) break;
      }
    }
    this.options.logger.warn({ pool_id: poolId, job_id: task.task_id, asked: Math.min(candidates.length, MAX_TRIES) }, 'prompt tokens not counted before admission; the task is admitted unchecked');
    return undefined;
  }

  /** Ready replicas serving the model that publish a listener, least loaded first (tokenizing takes no slot, but a busy engine answers slower). */
  private candidates(poolId: string, modelRef: string): ReplicaStatus[] {
    const now = Date.now();
    const load = (replica: ReplicaStatus): number => replica.slots_busy / Math.max(1, replica.slots_total);
    return this.options.replicas
      .replicas(poolId)
      .filter((replica) => replica.ready && typeof replica.fast_start_url === 'string' && replica.model_ref === modelRef && (this.leftAloneUntil.get(replica.replica_id) ?? 0) <= now)
      .sort((left, right) => load(left) - load(right));
  }
}
