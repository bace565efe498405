import { performance } from 'node:perf_hooks';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request } from 'undici';
import type { Dispatcher } from 'undici';
import type { OrchError } from '../../core/errors';
import type { CompletionSummary, EngineHealth, EngineToken } from './engine-adapter';
import { parseSseEvents } from './llamacpp/sse-events';
import type { SseEvent } from './llamacpp/sse-events';

/** How one engine names its failures; the HTTP plumbing is shared, the error codes and wording are the engine's. */
export interface EngineErrors {
  fromHttpStatus(status: number, bodyText: string): OrchError;
  fromTransportFailure(error: unknown, signal: AbortSignal | undefined): unknown;
  workerReset(message: string, cause?: unknown): OrchError;
}

export interface EngineHttpOptions {
  /** The engine's base URL; a path prefix is kept. */
  readonly baseUrl: string;
  /** Injected for tests or shared pools; its lifecycle is then the caller's. */
  readonly dispatcher?: Dispatcher | undefined;
  /** Deadline for each control call. Default 5 s. */
  readonly controlTimeoutMs?: number | undefined;
}

export interface TextResponse {
  readonly statusCode: number;
  readonly text: string;
}

export interface StreamOptions {
  /**
   * Listen for the body's error before destroying it: undici's body emits an abort error when destroyed early,
   * which would otherwise go unhandled. llama.cpp's adapter has always destroyed without one.
   */
  readonly quietDestroy: boolean;
}

export interface EngineHttp {
  readonly controlTimeoutMs: number;
  url(path: string): URL;
  /** A control call with the control deadline; a body is sent as JSON. A path is resolved against the base URL. */
  call(method: 'GET' | 'POST', target: string | URL, body?: unknown, signal?: AbortSignal, timeoutMs?: number): Promise<TextResponse>;
  /** `call`, then anything but 200 is the engine's HTTP error and the body must be JSON. */
  callJson(method: 'GET' | 'POST', path: string, body?: unknown, signal?: AbortSignal, timeoutMs?: number): Promise<unknown>;
  parseJson(text: string, what: string): unknown;
  /**
   * POSTs `body` for an event stream and hands its SSE events to `read`. Without a control deadline: a generation
   * may take as long as the caller's signal allows. On success the body is left to end so the socket stays in the
   * keep-alive pool; aborted, failed or stopped early, the body is destroyed, which is how every engine here cancels.
   */
  stream(
    target: string | URL,
    body: unknown,
    signal: AbortSignal,
    read: (events: AsyncIterable<SseEvent>) => AsyncGenerator<EngineToken, CompletionSummary, void>,
    options?: StreamOptions,
  ): AsyncGenerator<EngineToken, CompletionSummary, void>;
  /** Closes the keep-alive agent made here; a no-op with an injected dispatcher. A property: adapters hand it on as theirs. */
  readonly close: () => Promise<void>;
}

const DEFAULT_CONTROL_TIMEOUT_MS = 5_000;
/** Idle keep-alive sockets are kept this long (the engines' own idle timeouts are longer). */
const KEEP_ALIVE_TIMEOUT_MS = 4_000;

/** Readable's async iterator, told not to destroy the body when the consumer stops early. */
export function bodyChunks(body: Readable): AsyncIterable<Uint8Array> {
  return body.iterator({ destroyOnReturn: false }) as AsyncIterable<Uint8Array>;
}

/** undici without retries: Temporal owns retries, and a retried completion would duplicate tokens. */
export function createEngineHttp(options: EngineHttpOptions, errors: EngineErrors): EngineHttp {
  const base = options.baseUrl.endsWith('/') ? options.baseUrl : `${options.baseUrl}/`;
  let ownAgent: Agent | undefined;
  const dispatcher: Dispatcher = options.dispatcher ?? (ownAgent = new Agent({ keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS }));
  const controlTimeoutMs = options.controlTimeoutMs ?? DEFAULT_CONTROL_TIMEOUT_MS;
  const url = (path: string): URL => new URL(path, base);

  function parseJson(text: string, what: string): unknown {
    try {
      return JSON.parse(text);
    } catch (error) {
      throw errors.workerReset(`${what} is not JSON: ${text.slice(0, 200)}`, error);
    }
  }

  async function call(method: 'GET' | 'POST', target: string | URL, body?: unknown, signal?: AbortSignal, timeoutMs = controlTimeoutMs): Promise<TextResponse> {
    // undici reads a 0 timeout as "none"; a control call always has one.
    const deadlineMs = Math.max(1, Math.round(timeoutMs));
    try {
      const response = await request(typeof target === 'string' ? url(target) : target, {
        method,
        dispatcher,
        signal: signal ?? null,
        headersTimeout: deadlineMs,
        bodyTimeout: deadlineMs,
        ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
      });
      return { statusCode: response.statusCode, text: await response.body.text() };
    } catch (error) {
      throw errors.fromTransportFailure(error, signal);
    }
  }

  async function callJson(method: 'GET' | 'POST', path: string, body?: unknown, signal?: AbortSignal, timeoutMs?: number): Promise<unknown> {
    const response = await call(method, path, body, signal, timeoutMs);
    if (response.statusCode !== 200) throw errors.fromHttpStatus(response.statusCode, response.text);
    return parseJson(response.text, `/${path}`);
  }

  async function* stream(
    target: string | URL,
    body: unknown,
    signal: AbortSignal,
    read: (events: AsyncIterable<SseEvent>) => AsyncGenerator<EngineToken, CompletionSummary, void>,
    streamOptions: StreamOptions = { quietDestroy: true },
  ): AsyncGenerator<EngineToken, CompletionSummary, void> {
    let response: Dispatcher.ResponseData | undefined;
    let completed = false;
    try {
      response = await request(typeof target === 'string' ? url(target) : target, {
        method: 'POST',
        dispatcher,
        signal,
        headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
        body: JSON.stringify(body),
      });
      if (response.statusCode !== 200) throw errors.fromHttpStatus(response.statusCode, await response.body.text());
      const summary = yield* read(parseSseEvents(bodyChunks(response.body)));
      completed = true;
      return summary;
    } catch (error) {
      throw errors.fromTransportFailure(error, signal);
    } finally {
      if (completed) {
        // The last event is in; let the body end on its own so the socket stays in the keep-alive pool.
        response?.body.on('error', () => undefined).resume();
      } else if (streamOptions.quietDestroy) {
        response?.body.on('error', () => undefined).destroy();
      } else {
        // Do it now rather than on garbage collection: closing the socket is the engine's cancel.
        response?.body.destroy();
      }
    }
  }

  return {
    controlTimeoutMs,
    url,
    call,
    callJson,
    parseJson,
    stream,
    close: async () => {
      await ownAgent?.close();
    },
  };
}

export interface PollOptions<T> {
  readonly timeoutMs: number;
  readonly intervalMs: number;
  /** Each read's deadline is this, or what is left of `timeoutMs` when that is less (at least 1 ms). */
  readonly controlTimeoutMs: number;
  /** Asks the engine; a failure is remembered and asked again (it may be restarting or briefly unreachable). */
  read(budgetMs: number): Promise<T>;
  /** undefined when the wait is over, else what was seen; what it throws ends the wait. */
  check(value: T): string | undefined;
  /** The error when the deadline passes, given the last thing seen. */
  timedOut(lastSeen: string): Error;
}

/** The confirm-after-abort loop: reads and checks every `intervalMs` until `check` is satisfied or time runs out. */
export async function pollUntil<T>(poll: PollOptions<T>): Promise<void> {
  const deadline = performance.now() + poll.timeoutMs;
  let lastSeen = 'no answer yet';
  for (;;) {
    let value: { readonly read: T } | undefined;
    try {
      value = { read: await poll.read(Math.min(poll.controlTimeoutMs, Math.max(1, deadline - performance.now()))) };
    } catch (error) {
      lastSeen = error instanceof Error ? error.message : String(error);
    }
    if (value !== undefined) {
      const seen = poll.check(value.read);
      if (seen === undefined) return;
      lastSeen = seen;
    }
    if (performance.now() + poll.intervalMs > deadline) throw poll.timedOut(lastSeen);
    await sleep(poll.intervalMs);
  }
}

/**
 * An engine's health from one readiness route: no answer is not live (still starting, or gone), 200 is ready,
 * any other status is live but not ready, with what the engine said (`describe` reads its error body; absent or
 * unreadable, the status says enough). An aborted `signal` is the caller's, so it throws.
 */
export async function readHealth(
  http: Pick<EngineHttp, 'call'>,
  path: string,
  signal: AbortSignal | undefined,
  describe: (bodyText: string) => string | undefined = () => undefined,
): Promise<EngineHealth> {
  let response: TextResponse;
  try {
    response = await http.call('GET', path, undefined, signal);
  } catch (error) {
    if (signal?.aborted === true) throw error;
    return { live: false, ready: false, detail: error instanceof Error ? error.message : String(error) };
  }
  if (response.statusCode === 200) return { live: true, ready: true };
  let said: string | undefined;
  try {
    said = describe(response.text);
  } catch {
    // Not the engine's error shape: the status says enough.
  }
  return { live: true, ready: false, detail: `HTTP ${response.statusCode}${said === undefined ? '' : `: ${said}`}` };
}
