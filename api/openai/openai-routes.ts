import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { POOL_DEFAULTS, type PoolConfig } from '../../core/config';
import { PRIORITIES, type Priority } from '../../core/engines';
import { ErrorCode, isErrorCode, OrchError } from '../../core/errors';
import type { TaskRequest } from '../../core/task-request';
import type { GatewayContext } from '../gateway-context';
import { SseResponse } from '../sse-response';
import { cancelTask, submitTask } from '../task-lifecycle';
import type { TaskStream } from '../task-stream';
import {
  ChatCompletionRequestSchema,
  chatGeneration,
  CompletionRequestSchema,
  completionGeneration,
  parseOpenAiBody,
  type OpenAiGeneration,
} from './openai-request';
import { completionResponse, finishReasonOf, streamChunk, usageChunk, type OpenAiKind, type ResponseIdentity, type Usage } from './openai-responses';

/** Without max_tokens (OpenAI's default is "until the model stops"), a task is bounded by this and the pool's ctx. */
export const DEFAULT_MAX_TOKENS = 512;
/** An OpenAI request has no deadline field; this one is long enough for any queue a client would wait in. */
export const DEFAULT_DEADLINE_MS = 600_000;
/** llama-orch's header for the priority class (the body's `priority` works too, through `extra_body`). */
export const PRIORITY_HEADER = 'x-orch-priority';

const OPENAI_PATHS: ReadonlySet<string> = new Set(['/v1/chat/completions', '/v1/completions', '/v1/models']);

/** Errors on these routes take OpenAI's shape (api/error-envelope.ts sendOpenAiError). */
export function isOpenAiRoute(request: FastifyRequest): boolean {
  return OPENAI_PATHS.has(request.routeOptions.url ?? '');
}

/**
 * The OpenAI-compatible surface (ADR 2026-12-06-openai-surface): each request becomes an ordinary task
 * (api/task-lifecycle.ts: same admission, queues, priorities, tenancy, workflow, metrics and logs), and
 * its stream is translated into OpenAI's chunks or answer.
 */
export function registerOpenAiRoutes(app: FastifyInstance, context: GatewayContext): void {
  app.post('/v1/chat/completions', (request, reply) => serveCompletion(context, request, reply, 'chat'));
  app.post('/v1/completions', (request, reply) => serveCompletion(context, request, reply, 'text'));
  app.get('/v1/models', async (_request, reply) => reply.send(modelList(context)));
}

async function serveCompletion(context: GatewayContext, request: FastifyRequest, reply: FastifyReply, kind: OpenAiKind): Promise<FastifyReply | undefined> {
  const generation = kind === 'chat' ? chatGeneration(parseOpenAiBody(ChatCompletionRequestSchema, request.body)) : completionGeneration(parseOpenAiBody(CompletionRequestSchema, request.body));
  const pool = poolServing(context, generation.model);
  const ctx = pool.ctx ?? POOL_DEFAULTS.ctx;
  const taskRequest: TaskRequest = {
    task_id: randomUUID(),
    session_id: randomUUID(),
    workload: 'completion',
    model_ref: generation.model,
    engine: pool.engine,
    ctx,
    priority: priorityOf(request, generation),
    prompt: generation.prompt,
    max_tokens: generation.maxTokens ?? Math.min(DEFAULT_MAX_TOKENS, ctx),
    deadline_ms: DEFAULT_DEADLINE_MS,
    ...(generation.seed === undefined ? {} : { seed: generation.seed }),
  };
  await submitTask(context, taskRequest, context.auth.clientIdOf(request), request.log, { chat: generation.chat, sampling: generation.sampling, maxTokensDefaulted: generation.maxTokens === undefined });
  const stream = context.hub.get(taskRequest.task_id);
  if (!stream) throw new OrchError(ErrorCode.INTERNAL, 'the task was admitted but its stream is gone');
  const identity: ResponseIdentity = { kind, taskId: taskRequest.task_id, model: generation.model, created: Math.floor(Date.now() / 1000), systemFingerprint: null };
  const follow = { context, request, stream, identity, maxTokens: taskRequest.max_tokens };
  if (generation.stream) {
    streamCompletion(follow, reply, generation.includeUsage);
    return undefined;
  }
  reply.header('x-orch-task-id', taskRequest.task_id);
  return reply.send(await collectCompletion(follow, reply));
}

interface Following {
  readonly context: GatewayContext;
  readonly request: FastifyRequest;
  readonly stream: TaskStream;
  readonly identity: ResponseIdentity;
  readonly maxTokens: number;
}

type TaskEvent = { readonly kind: 'token'; readonly text: string } | { readonly kind: 'end'; readonly usage: Usage; readonly finishReason: 'stop' | 'length' } | { readonly kind: 'error'; readonly error: OrchError };

/**
 * Follows the task's stream from its start and hands each token and the end on. A client that goes away
 * before the end cancels the task, so no engine work continues for nobody.
 */
function followTask(follow: Following, connection: FastifyReply['raw'], onEvent: (event: TaskEvent) => void): void {
  const { stream, identity } = follow;
  let tokens = 0;
  let ended = false;
  const subscription = stream.subscribe(
    undefined,
    (frame) => {
      if (ended) return;
      const data = JSON.parse(frame.data) as Record<string, unknown>;
      if (frame.event === 'token') {
        tokens += 1;
        onEvent({ kind: 'token', text: String(data['t']) });
      } else if (frame.event === 'metrics' && data['phase'] === 'dispatched' && typeof data['engine_version'] === 'string') {
        identity.systemFingerprint = data['engine_version'];
      } else if (frame.event === 'end') {
        ended = true;
        const promptTokens = stream.ending?.tokensIn ?? 0;
        const usage = { prompt_tokens: promptTokens, completion_tokens: tokens, total_tokens: promptTokens + tokens };
        onEvent({ kind: 'end', usage, finishReason: finishReasonOf(stream.ending?.stopReason, tokens, follow.maxTokens) });
      } else if (frame.event === 'error') {
        ended = true;
        const code = isErrorCode(data['code']) ? data['code'] : ErrorCode.INTERNAL;
        onEvent({ kind: 'error', error: new OrchError(code, typeof data['message'] === 'string' ? data['message'] : 'the task failed', { poolId: stream.poolId }) });
      }
    },
    () => undefined,
  );
  connection.once('close', () => {
    subscription.unsubscribe();
    if (ended || connection.writableFinished) return;
    ended = true;
    cancelTask(follow.context, identity.taskId, follow.request.log, 'client disconnected').catch((error: unknown) => {
      follow.request.log.warn({ err: error, job_id: identity.taskId }, 'cancel after the client went away failed');
    });
  });
}

function streamCompletion(follow: Following, reply: FastifyReply, includeUsage: boolean): void {
  const { identity } = follow;
  reply.hijack();
  const sse = new SseResponse(reply.raw, follow.request.id, { 'x-orch-task-id': identity.taskId });
  const send = (object: unknown): void => sse.writeEncoded(`data: ${JSON.stringify(object)}\n\n`);
  if (identity.kind === 'chat') send(streamChunk(identity, { role: true, text: '' }));
  followTask(follow, reply.raw, (event) => {
    if (event.kind === 'token') {
      send(streamChunk(identity, { text: event.text }));
      return;
    }
    if (event.kind === 'end') {
      send(streamChunk(identity, { finishReason: event.finishReason }));
      if (includeUsage) send(usageChunk(identity, event.usage));
      sse.writeEncoded('data: [DONE]\n\n');
    } else {
      // Headers are gone: OpenAI's clients raise an APIError on a chunk that carries `error`.
      send({ error: { message: event.error.message, type: 'server_error', param: null, code: event.error.code } });
    }
    sse.end();
  });
}

function collectCompletion(follow: Following, reply: FastifyReply): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    let text = '';
    followTask(follow, reply.raw, (event) => {
      if (event.kind === 'token') text += event.text;
      else if (event.kind === 'end') resolve(completionResponse(follow.identity, text, event.finishReason, event.usage));
      else reject(event.error);
    });
  });
}

/** The pool whose current model is `model` (the first, as OrchQueue's selectPool picks). */
function poolServing(context: GatewayContext, model: string): PoolConfig {
  const pool = context.config.pools.find((candidate) => context.poolStates.modelOf(candidate) === model);
  if (!pool) {
    const served = [...new Set(context.config.pools.map((candidate) => context.poolStates.modelOf(candidate)))].join(', ');
    throw new OrchError(ErrorCode.INVALID_PARAMS, `model "${model}" is not served here (GET /v1/models lists: ${served})`, { notFound: true });
  }
  return pool;
}

function priorityOf(request: FastifyRequest, generation: OpenAiGeneration): Priority {
  const header = request.headers[PRIORITY_HEADER];
  if (header === undefined) return generation.priority ?? 'interactive';
  const value = Array.isArray(header) ? header[0] : header;
  const priority = PRIORITIES.find((candidate) => candidate === value);
  if (!priority) throw new OrchError(ErrorCode.INVALID_PARAMS, `${PRIORITY_HEADER}: expected one of ${PRIORITIES.join(', ')}`);
  return priority;
}

/** GET /v1/models: every model a pool serves now, with the pools that serve it (llama-orch's extra field). */
function modelList(context: GatewayContext): Record<string, unknown> {
  const pools = new Map<string, string[]>();
  for (const pool of context.config.pools) {
    const model = context.poolStates.modelOf(pool);
    pools.set(model, [...(pools.get(model) ?? []), pool.id]);
  }
  const created = Math.floor(Date.now() / 1000);
  return { object: 'list', data: [...pools].map(([id, poolIds]) => ({ id, object: 'model', created, owned_by: 'llama-orch', pools: poolIds })) };
}
