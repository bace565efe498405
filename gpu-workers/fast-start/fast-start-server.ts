import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { z } from 'zod';
import { ApplicationFailure } from '@temporalio/common';
import type { EngineGeneration } from '../../activities/engine-generation';
import { OUTCOME_KEEPALIVE_MS, type FastStartOutcomeLine } from '../../core/fast-start-wire';
import { PLACEMENT_REASONS, type TaskWorkflowInput } from '../../core/task-workflow-contract';
import { TaskRequestSchema } from '../../core/task-request';
import { ChatMessageSchema, SamplingOverridesSchema } from '../../core/generation-options';
import { httpUrl } from '../../platform/http-url';
import { bearerMatches } from '../../platform/internal-token';
import type { LiveRelays } from '../live-relays';

/** A prompt is at most 256 KiB; JSON escaping can grow it several times. */
const MAX_BODY_BYTES = 2 * 1024 * 1024;

export const FastStartInputSchema = z.object({
  version: z.literal(1),
  request: TaskRequestSchema,
  poolId: z.string().min(1),
  clientId: z.string().min(1),
  admittedAtMs: z.number(),
  timeouts: z.object({ wallMs: z.int().min(1), idleMs: z.int().min(1), heartbeatMs: z.int().min(1), maxAttempts: z.int().min(1) }),
  streamSinkUrl: z.url().optional(),
  placement: z.object({ replicaId: z.string().min(1), waitMs: z.int().min(0), reason: z.enum(PLACEMENT_REASONS), fastStartUrl: z.url().optional() }),
  // Every field of the input the generation reads: a field this schema dropped would decode another request.
  chat: z.array(ChatMessageSchema).max(1024).optional(),
  sampling: SamplingOverridesSchema.optional(),
});

const HandOverSchema = z.strictObject({ sinkUrl: z.url() });

/** What a replica answers a fast start: it took a slot and is decoding, or why not (the task then takes the queue). */
export type FastStartVerdict = { readonly accepted: true } | { readonly accepted: false; readonly reason: string };

export interface FastStartHandler {
  start(input: TaskWorkflowInput): FastStartVerdict;
  withdraw(taskId: string): boolean;
  /** The run's generation while this replica keeps it; its `done` settles with the outcome. */
  outcome(taskId: string): EngineGeneration | undefined;
  /** The prompt's tokens as the engine counts them (chat messages rendered by its template first): admission's budget check (ORCH-3015). */
  countPromptTokens(input: PromptToCount): Promise<number>;
}

/** POST /internal/v1/tokenize: a prompt, or an OpenAI chat's messages (rendered with the model's template first). */
export const PromptToCountSchema = z.union([z.strictObject({ prompt: z.string() }), z.strictObject({ chat: z.array(ChatMessageSchema).min(1).max(1024) })]);
export type PromptToCount = z.infer<typeof PromptToCountSchema>;



/**
 * The pool worker's internal listener, named for its first use: fast starts (ADR 2026-12-06; gateways
 * POST a task's workflow input here just before they write the workflow, and the replica starts decoding
 * if it has a free slot), prompt counts for admission (ORCH-3015) and stream hand-overs to a gateway that
 * took a stream over (api/stream-handover.ts). Gateways call it through api/replica-listener.ts. Served
 * for the life of the process; fast starts and counts are only taken while a Ready period has installed a
 * handler. Authenticated with the internal channel's token.
 */
export class FastStartServer {
  private handler: FastStartHandler | undefined;
  private relays: LiveRelays | undefined;

  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  static async listen(host: string, internalToken: string, logger: Logger): Promise<FastStartServer> {
    // The handler needs the instance, which needs the listening server's port.
    const created: { instance?: FastStartServer } = {};
    const server = createServer((request, response) => {
      const { instance } = created;
      if (!instance) return respond(response, 503, { reason: 'starting' });
      instance.handle(request, response, internalToken).catch((error: unknown) => {
        logger.error({ err: error }, 'fast-start request failed');
        if (!response.headersSent) respond(response, 500, { reason: 'internal' });
      });
    });
    server.keepAliveTimeout = 30_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, host, () => resolve());
    });
    const { port } = server.address() as AddressInfo;
    const instance = new FastStartServer(server, httpUrl(host, port));
    created.instance = instance;
    return instance;
  }

  /** Installs the Ready period's handler; undefined while not Ready (every fast start is refused). */
  serve(handler: FastStartHandler | undefined): void {
    this.handler = handler;
  }

  /** Serves stream hand-overs from these relays: a gateway taking over a stream asks every replica of the pool. */
  handOverWith(relays: LiveRelays): void {
    this.relays = relays;
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private async handle(request: IncomingMessage, response: ServerResponse, internalToken: string): Promise<void> {
    if (!bearerMatches(request.headers.authorization, internalToken)) return respond(response, 401, { reason: 'bad or missing internal token' });
    const path = request.url ?? '';
    if (request.method === 'POST' && path === '/internal/v1/fast-starts') {
      const parsed = FastStartInputSchema.safeParse(await readJson(request));
      if (!parsed.success) return respond(response, 400, { reason: parsed.error.issues[0]?.message ?? 'invalid workflow input' });
      const { request: task } = parsed.data;
      if (task.seed === undefined || task.sampler_profile_version === undefined) return respond(response, 400, { reason: 'seed and sampler profile must be resolved' });
      const input = parsed.data as TaskWorkflowInput;
      const verdict = this.handler?.start(input) ?? { accepted: false, reason: 'not ready' };
      return respond(response, verdict.accepted ? 202 : 409, verdict);
    }
    if (request.method === 'POST' && path === '/internal/v1/tokenize') return this.countPromptTokens(request, response);
    const outcome = /^\/internal\/v1\/fast-starts\/([\w-]{1,128})\/outcome$/.exec(path);
    if (request.method === 'GET' && outcome?.[1] !== undefined) {
      const generation = this.handler?.outcome(outcome[1]);
      if (!generation) return respond(response, 404, { reason: 'no such run on this replica' });
      return streamOutcome(generation, response);
    }
    const withdraw = /^\/internal\/v1\/fast-starts\/([\w-]{1,128})$/.exec(path);
    if (request.method === 'DELETE' && withdraw?.[1] !== undefined) {
      return respond(response, this.handler?.withdraw(withdraw[1]) === true ? 204 : 404, undefined);
    }
    const handOver = /^\/internal\/v1\/relays\/([\w-]{1,128})\/sink$/.exec(path);
    if (request.method === 'PUT' && handOver?.[1] !== undefined) {
      const parsed = HandOverSchema.safeParse(await readJson(request));
      if (!parsed.success) return respond(response, 400, { reason: parsed.error.issues[0]?.message ?? 'invalid hand-over' });
      const handedOver = (await this.relays?.handOver(handOver[1], parsed.data.sinkUrl)) === true;
      return respond(response, handedOver ? 200 : 404, handedOver ? { handedOver } : { reason: 'no such run on this replica' });
    }
    respond(response, 404, { reason: 'no such route' });
  }

  /** 200 `{prompt_tokens}`; 503 while not Ready (no engine to ask); 502 when the engine failed to answer. */
  private async countPromptTokens(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const parsed = PromptToCountSchema.safeParse(await readJson(request));
    if (!parsed.success) return respond(response, 400, { reason: parsed.error.issues[0]?.message ?? 'expected {prompt} or {chat}' });
    const { handler } = this;
    if (!handler) return respond(response, 503, { reason: 'not ready' });
    try {
      respond(response, 200, { prompt_tokens: await handler.countPromptTokens(parsed.data) });
    } catch (error) {
      respond(response, 502, { reason: error instanceof Error ? error.message : String(error) });
    }
  }
}

/**
 * Answers at once, keeps the connection visibly alive while the run decodes, and ends with the outcome
 * line. A client that goes away changes nothing: the run goes on, and a workflow worker that took the
 * task over collects it again.
 */
async function streamOutcome(generation: EngineGeneration, response: ServerResponse): Promise<void> {
  response.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-cache' });
  const keepalive = setInterval(() => response.write('\n'), OUTCOME_KEEPALIVE_MS);
  let line: FastStartOutcomeLine;
  try {
    line = { outcome: await generation.done };
  } catch (error) {
    const failure = error instanceof ApplicationFailure ? error : undefined;
    line = {
      failure: {
        type: failure?.type ?? 'WORKER_RESET',
        message: error instanceof Error ? error.message : String(error),
        nonRetryable: failure?.nonRetryable ?? false,
      },
    };
  } finally {
    clearInterval(keepalive);
  }
  response.end(`${JSON.stringify(line)}\n`);
}

async function readJson(request: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    const buffer = chunk as Buffer;
    size += buffer.length;
    if (size > MAX_BODY_BYTES) return undefined;
    chunks.push(buffer);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
  } catch {
    return undefined;
  }
}

function respond(response: ServerResponse, status: number, body: object | undefined): void {
  if (body === undefined) {
    response.writeHead(status).end();
    return;
  }
  const text = JSON.stringify(body);
  response.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }).end(text);
}
