import { randomInt } from 'node:crypto';
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { pieceText } from '../mock-llamacpp/mock-vocabulary';
import { TgiDoubleMetrics } from './tgi-double-metrics';
import { bestOfRefusal, parseGenerateBody, TGI_DOUBLE_MAX_BEST_OF, tokenizeInputs, validateGenerateRequest, validationError } from './tgi-double-request';
import type { TgiLimits, TgiRefusal, ValidGenerateRequest } from './tgi-double-request';
import { TgiDoubleScheduler } from './tgi-double-scheduler';
import type { GenerationEnd } from './tgi-double-scheduler';

/**
 * A TEST DOUBLE of Hugging Face Text Generation Inference's native HTTP API — not TGI. No TGI server installs from a
 * package registry (it ships as a Docker image), so llama-orch's TGI adapter is tested against this double, which
 * follows TGI's own sources at huggingface/text-generation-inference commit
 * db931fcf42da018a3657580c64bf2720f167f9ab (2026-01-08, version 3.3.6-dev0, in maintenance mode since 34988476):
 * - router/src/lib.rs: `GenerateRequest`, `GenerateParameters`, `StreamResponse`, `StreamDetails`, `Token`,
 *   `FinishReason` (`length` | `eos_token` | `stop_sequence`), `GenerateResponse`, `Details`, `Info`,
 *   `SimpleToken`, `ErrorResponse {error, error_type}`;
 * - router/src/server.rs: the routes (`POST /generate`, `/generate_stream`, `/` with `stream`, `/tokenize`;
 *   `GET /info`, `/health`, `/ping`, `/`, `/metrics`); `generate_stream` answers 200 and sends each event as
 *   `data:<json>` (axum, no space), `index` counting from 1, `generated_text` and `details` only on the last event,
 *   no `[DONE]`; an error after the headers — overloaded and validation errors included — is one
 *   `data:{"error","error_type"}` event (docs/openapi.json lists 422/424/429 for the route, but the handler returns
 *   `(HeaderMap, Sse)`, so the status is 200); `/generate` answers them with the status of `From<InferError>`
 *   (422 validation, 424 generation, 429 overloaded); `/health` 200 with an empty body, or 503
 *   `{"error":"unhealthy","error_type":"healthcheck"}`;
 * - router/src/infer/mod.rs: the `max_concurrent_requests` semaphore, tried and never waited for ("Model is
 *   overloaded", `overloaded`); router/src/validation.rs: the checks (tgi-double-request.ts);
 * - backends/v3/src/{backend,queue}.rs and docs/source/reference/metrics.md: `tgi_*` metrics (tgi-double-metrics.ts).
 * The generated text is synthetic (mock-llamacpp/mock-vocabulary.ts), a pure function of (seed when sampling,
 * inputs). /info says what it is: `router` is `tgi-test-double` and `version` starts with `tgi-double-`. What it
 * leaves out: best_of > 1 (it runs as TGI does with --max-best-of 1, refusing it), top_n_tokens output, grammars, the OpenAI-compatible routes (/v1/*), LoRA adapters.
 */
export interface TgiDoubleOptions {
  /** 0 (default) picks a free port; the server binds 127.0.0.1 only. */
  readonly port?: number | undefined;
  /** The router's semaphore (`--max-concurrent-requests`; TGI's default 128). */
  readonly maxConcurrentRequests?: number | undefined;
  /** Requests decoded at once (`--max-batch-size`); the rest wait in the queue. Default: maxConcurrentRequests. */
  readonly maxBatchSize?: number | undefined;
  readonly maxInputTokens?: number | undefined;
  /** Prompt + generated tokens per request (`--max-total-tokens`). Default 4096. */
  readonly maxTotalTokens?: number | undefined;
  /** From batch entry to the first token. Default 20 ms. */
  readonly ttftMs?: number | undefined;
  /** Between tokens. Default 5 ms. */
  readonly interTokenMs?: number | undefined;
  /** End generations with EOS after a seed-derived 8–63 tokens. Default off. */
  readonly emitEos?: boolean | undefined;
  readonly modelId?: string | undefined;
}

/** The double's `Info.version`: never a TGI release number, so nothing mistakes it for TGI. */
export const TGI_DOUBLE_VERSION_PREFIX = 'tgi-double-';
export const TGI_DOUBLE_VERSION = `${TGI_DOUBLE_VERSION_PREFIX}0.1.0`;
export const TGI_DOUBLE_ROUTER = 'tgi-test-double';
/** TGI's KeepAlive::default(): an empty comment every 15 s. */
const KEEP_ALIVE_MS = 15_000;
const MAX_BODY_BYTES = 2 * 1024 * 1024;

export interface TgiDoubleStats {
  readonly queueSize: number;
  readonly batchSize: number;
  readonly permitsInUse: number;
  readonly requestCount: number;
  readonly requestSuccess: number;
  readonly droppedCount: number;
  readonly overloadedCount: number;
  /** The last generate body as received, for asserting what a client sent. */
  readonly lastRequest: unknown;
}

export interface TgiDouble {
  readonly url: string;
  /** /health answers 503 while false (TGI's health check after a failed generation). */
  setHealthy(healthy: boolean): void;
  stats(): TgiDoubleStats;
  close(): Promise<void>;
}

export async function startTgiDouble(options: TgiDoubleOptions = {}): Promise<TgiDouble> {
  const maxConcurrentRequests = options.maxConcurrentRequests ?? 128;
  const maxTotalTokens = options.maxTotalTokens ?? 4096;
  const limits: TgiLimits = {
    maxInputTokens: options.maxInputTokens ?? maxTotalTokens - 1,
    maxTotalTokens,
    maxStopSequences: 4,
    maxTopNTokens: 5,
  };
  const metrics = new TgiDoubleMetrics(limits);
  const scheduler = new TgiDoubleScheduler(
    maxConcurrentRequests,
    options.maxBatchSize ?? maxConcurrentRequests,
    { ttftMs: options.ttftMs ?? 20, interTokenMs: options.interTokenMs ?? 5, emitEos: options.emitEos ?? false, maxTotalTokens },
    metrics,
  );
  const modelId = options.modelId ?? 'llama-orch/tgi-double-synthetic';
  const info = {
    model_id: modelId,
    model_sha: null,
    model_pipeline_tag: 'text-generation',
    max_concurrent_requests: maxConcurrentRequests,
    max_best_of: TGI_DOUBLE_MAX_BEST_OF,
    max_stop_sequences: limits.maxStopSequences,
    max_input_tokens: limits.maxInputTokens,
    max_total_tokens: maxTotalTokens,
    validation_workers: 2,
    max_client_batch_size: 4,
    router: TGI_DOUBLE_ROUTER,
    version: TGI_DOUBLE_VERSION,
    sha: null,
    docker_label: null,
  };
  let healthy = true;
  let lastRequest: unknown;
  const randomSeed = (): number => randomInt(0, 2 ** 48 - 1);

  /** Reads the body and applies the checks TGI makes before its semaphore; undefined when the answer was sent. */
  async function readRequest(req: IncomingMessage, res: ServerResponse, forceStream: boolean | undefined) {
    const raw = await readBody(req);
    if (raw === undefined) {
      sendText(res, 413, 'length limit exceeded');
      return undefined;
    }
    const parsed = parseGenerateBody(req.headers['content-type'], raw);
    if (!parsed.ok) {
      sendRefusal(res, parsed.refusal);
      return undefined;
    }
    lastRequest = parsed.body;
    const stream = forceStream ?? parsed.body.stream ?? false;
    // The compat route (POST /) returns the full text by default for a `text-generation` model (server.rs).
    const body =
      forceStream === undefined && parsed.body.parameters?.return_full_text == null
        ? { ...parsed.body, parameters: { ...(parsed.body.parameters ?? { do_sample: true }), return_full_text: true } }
        : parsed.body;
    return { body, stream };
  }

  async function generateRoute(req: IncomingMessage, res: ServerResponse, forceStream: boolean | undefined): Promise<void> {
    const startedAt = performance.now();
    let gone = false;
    let onGone = (): void => undefined;
    res.on('close', () => {
      if (res.writableFinished) return;
      gone = true;
      onGone();
    });
    const read = await readRequest(req, res, forceStream);
    if (read === undefined || gone) return;
    metrics.increment('tgi_request_count');
    if (read.stream) {
      streamGeneration(res, read.body, startedAt, (cancel) => {
        onGone = cancel;
      });
    } else {
      whole(res, read.body, startedAt, forceStream === undefined, (cancel) => {
        onGone = cancel;
      });
    }
  }

  type Body = Parameters<typeof validateGenerateRequest>[0];

  /** The semaphore, then validation (infer/mod.rs); the permit is held until the generation ends or its client leaves. */
  function admit(body: Body): { ok: true; request: ValidGenerateRequest; validatedAt: number } | { ok: false; refusal: TgiRefusal } {
    if (!scheduler.tryAcquire()) {
      metrics.fail('overloaded');
      return { ok: false, refusal: { kind: 'tgi', status: 429, error: 'Model is overloaded', errorType: 'overloaded' } };
    }
    const validated = validateGenerateRequest(body, limits, randomSeed);
    if (!validated.ok) {
      scheduler.release();
      metrics.fail('validation');
      return validated;
    }
    metrics.record('tgi_request_input_length', validated.request.inputLength);
    metrics.record('tgi_request_max_new_tokens', validated.request.chunkTokens);
    return { ok: true, request: validated.request, validatedAt: performance.now() };
  }

  function streamGeneration(res: ServerResponse, body: Body, startedAt: number, setCancel: (cancel: () => void) => void): void {
    res.writeHead(200, {
      'Content-Type': 'text/event-stream',
      'Cache-Control': 'no-cache',
      'x-compute-type': TGI_DOUBLE_ROUTER,
      'x-compute-characters': String([...body.inputs].length),
      'X-Accel-Buffering': 'no',
    });
    res.flushHeaders();
    const keepAlive = setInterval(() => res.write(':\n\n'), KEEP_ALIVE_MS);
    const endStream = (last: string): void => {
      clearInterval(keepAlive);
      res.end(last);
    };
    setCancel(() => clearInterval(keepAlive));
    // generate_stream_internal refuses these before the semaphore.
    const bestOf = body.parameters?.best_of ?? 1;
    const early =
      bestOf !== 1
        ? validationError('`best_of` != 1 is not supported when streaming tokens')
        : body.parameters?.decoder_input_details === true
          ? validationError('`decoder_input_details` == true is not supported when streaming tokens')
          : undefined;
    if (early !== undefined) metrics.fail('validation');
    const admitted = early === undefined ? admit(body) : { ok: false as const, refusal: early };
    if (!admitted.ok) {
      endStream(errorEvent(admitted.refusal));
      return;
    }
    const request = admitted.request;
    const handle = scheduler.schedule(request, {
      token: (token, index, end) => {
        const event = {
          index,
          token,
          generated_text: end === undefined ? null : end.generatedText,
          details: end === undefined || !request.details ? null : streamDetails(end, request),
        };
        const frame = `data:${JSON.stringify(event)}\n\n`;
        if (end === undefined) return res.write(frame);
        recordDone(startedAt, admitted.validatedAt);
        endStream(frame);
        return true;
      },
      onDrain: (resume) => res.once('drain', resume),
    });
    setCancel(() => {
      clearInterval(keepAlive);
      handle.cancel();
    });
  }

  function whole(res: ServerResponse, body: Body, startedAt: number, compat: boolean, setCancel: (cancel: () => void) => void): void {
    const admitted = admit(body);
    if (!admitted.ok) return sendRefusal(res, admitted.refusal);
    const request = admitted.request;
    const bestOf = bestOfRefusal(request.bestOf, TGI_DOUBLE_MAX_BEST_OF);
    if (bestOf !== null) {
      scheduler.release();
      return sendRefusal(res, validationError(bestOf));
    }
    const handle = scheduler.schedule(request, {
      token: (_token, _index, end) => {
        if (end === undefined) return true;
        recordDone(startedAt, admitted.validatedAt);
        const response = { generated_text: end.generatedText, ...(request.details || request.decoderInputDetails ? { details: details(end, request) } : {}) };
        const totalMs = performance.now() - startedAt;
        const headers = {
          'x-compute-type': TGI_DOUBLE_ROUTER,
          'x-compute-time': String(totalMs / 1000),
          'x-compute-characters': String([...request.inputs].length),
          'x-total-time': String(Math.round(totalMs)),
          'x-validation-time': String(Math.round(admitted.validatedAt - startedAt)),
          'x-queue-time': String(Math.round(end.queuedMs)),
          'x-inference-time': String(Math.round(end.inferenceMs)),
          'x-time-per-token': String(Math.round(end.inferenceMs / end.generatedTokens)),
          'x-prompt-tokens': String(request.inputLength),
          'x-generated-tokens': String(end.generatedTokens),
        };
        // The compat route wraps the answer in a list "to match api-inference" (server.rs).
        sendJson(res, 200, compat ? [response] : response, headers);
        return true;
      },
      onDrain: (resume) => resume(),
    });
    setCancel(() => handle.cancel());
  }

  function recordDone(startedAt: number, validatedAt: number): void {
    metrics.record('tgi_request_duration', (performance.now() - startedAt) / 1000);
    metrics.record('tgi_request_validation_duration', (validatedAt - startedAt) / 1000);
  }

  function route(req: IncomingMessage, res: ServerResponse): void {
    const path = (req.url ?? '/').split('?', 1)[0] ?? '/';
    const method = req.method ?? 'GET';
    const fail = (error: unknown): void => {
      if (!res.headersSent) sendJson(res, 500, { error: String(error), error_type: 'double' });
      else res.destroy();
    };
    if (method === 'POST' && path === '/generate_stream') return void generateRoute(req, res, true).catch(fail);
    if (method === 'POST' && path === '/generate') return void generateRoute(req, res, false).catch(fail);
    if (method === 'POST' && path === '/') return void generateRoute(req, res, undefined).catch(fail);
    if (method === 'POST' && path === '/tokenize') return void tokenizeRoute(req, res).catch(fail);
    if (method === 'GET' && (path === '/health' || path === '/ping' || path === '/')) {
      req.resume();
      if (healthy) return sendText(res, 200, '');
      return sendJson(res, 503, { error: 'unhealthy', error_type: 'healthcheck' });
    }
    if (method === 'GET' && path === '/info') return sendJson(res, 200, info);
    if (method === 'GET' && path === '/metrics') {
      const text = metrics.render();
      res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(text) });
      res.end(text);
      return;
    }
    req.resume();
    // axum's fallback: 404 with an empty body.
    sendText(res, 404, '');
  }

  async function tokenizeRoute(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const raw = await readBody(req);
    if (raw === undefined) return sendText(res, 413, 'length limit exceeded');
    const parsed = parseGenerateBody(req.headers['content-type'], raw);
    if (!parsed.ok) return sendRefusal(res, parsed.refusal);
    sendJson(res, 200, simpleTokens(parsed.body.inputs));
  }

  const server = createServer(route);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  let closing: Promise<void> | undefined;
  return {
    url: `http://127.0.0.1:${address.port}`,
    setHealthy: (value) => {
      healthy = value;
    },
    stats: () => ({
      queueSize: scheduler.queueSize,
      batchSize: scheduler.batchSize,
      permitsInUse: scheduler.permitsInUse,
      requestCount: metrics.counter('tgi_request_count'),
      requestSuccess: metrics.counter('tgi_request_success'),
      droppedCount: metrics.counter('tgi_request_failure{err="dropped"}'),
      overloadedCount: metrics.counter('tgi_request_failure{err="overloaded"}'),
      lastRequest,
    }),
    close: () => {
      closing ??= new Promise<void>((resolve, reject) => {
        server.close((error) => (error === undefined ? resolve() : reject(error)));
        // Live streams close too; their 'close' drops their generations.
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

function streamDetails(end: GenerationEnd, request: ValidGenerateRequest): unknown {
  return { finish_reason: end.finishReason, generated_tokens: end.generatedTokens, seed: end.seed, input_length: request.inputLength };
}

/** `Details` of /generate: `prefill` only with decoder_input_details (the first prompt token has no logprob: null). */
function details(end: GenerationEnd, request: ValidGenerateRequest): unknown {
  const prefill = request.decoderInputDetails
    ? tokenizeInputs(request.inputs).map((id, index) => ({ id, text: id < 100 ? '<s>' : pieceText(id), logprob: index === 0 ? null : -1 }))
    : [];
  return { finish_reason: end.finishReason, generated_tokens: end.generatedTokens, seed: end.seed, prefill, tokens: end.tokens };
}

/** `TokenizeResponse`: one `SimpleToken` per id, its text and byte offsets in `inputs` (BOS: empty, 0..0). */
function simpleTokens(inputs: string): unknown[] {
  const ids = tokenizeInputs(inputs);
  const words = [...inputs.matchAll(/[^\s]+/gu)];
  return ids.map((id, index) => {
    const word = words[index - 1];
    if (index === 0 || word === undefined) return { id, text: '', start: 0, stop: 0 };
    const start = Buffer.byteLength(inputs.slice(0, word.index));
    return { id, text: word[0], start, stop: start + Buffer.byteLength(word[0]) };
  });
}

function errorEvent(refusal: TgiRefusal): string {
  const body = refusal.kind === 'tgi' ? { error: refusal.error, error_type: refusal.errorType } : { error: refusal.text, error_type: 'validation' };
  return `data:${JSON.stringify(body)}\n\n`;
}

function sendRefusal(res: ServerResponse, refusal: TgiRefusal): void {
  if (refusal.kind === 'plain') return sendText(res, refusal.status, refusal.text);
  sendJson(res, refusal.status, { error: refusal.error, error_type: refusal.errorType });
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Readonly<Record<string, string>> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { ...headers, 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

function sendText(res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

/** The body as text, or undefined past the size limit (axum's DefaultBodyLimit answers 413 there). */
function readBody(req: IncomingMessage): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_BODY_BYTES) chunks.push(chunk);
    });
    req.on('error', reject);
    req.on('end', () => resolve(size > MAX_BODY_BYTES ? undefined : Buffer.concat(chunks).toString('utf8')));
  });
}

