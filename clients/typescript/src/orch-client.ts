import { parseSse } from './sse';
import type {
  AdmissionResponse,
  ConfigChange,
  ErrorEnvelope,
  PoolHealth,
  PoolOperationAccepted,
  PoolOperationRecord,
  ReloadOptions,
  ReplicaSet,
  SessionInfo,
  StackHealth,
  StreamEvent,
  TaskRequest,
} from './types';

export interface OrchClientOptions {
  /** The gateway, e.g. http://127.0.0.1:8080 (any gateway of a deployment: streams are relayed). */
  readonly baseUrl: string;
  /** Sent as `Authorization: Bearer <key>`. */
  readonly apiKey?: string | undefined;
  /** Extra headers on every request (X-Correlation-Id, X-Client-Id when auth is off, …). */
  readonly headers?: Readonly<Record<string, string>> | undefined;
  /** Reconnects a stream may make in a row without a frame in between. Default 20. */
  readonly maxStreamReconnects?: number | undefined;
  /** Wait before reconnecting a dropped stream. Default 250 ms. */
  readonly reconnectDelayMs?: number | undefined;
  /** The fetch to use (default: the global one). */
  readonly fetch?: typeof fetch | undefined;
}

/** A typed error answer: the envelope's code, whether to retry, and after how long. */
export class OrchApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly retriable: boolean;
  readonly retryAfterMs: number | undefined;
  readonly envelope: ErrorEnvelope | undefined;

  constructor(status: number, envelope: ErrorEnvelope | undefined, fallback: string) {
    super(envelope ? `${envelope.code}: ${envelope.message}` : `HTTP ${status}: ${fallback}`);
    this.name = 'OrchApiError';
    this.status = status;
    this.code = envelope?.code ?? `HTTP_${status}`;
    this.retriable = envelope?.retriable ?? status >= 500;
    this.retryAfterMs = envelope?.retry_after_ms;
    this.envelope = envelope;
  }
}

/**
 * Every operation of the client with its route, as the OpenAPI document names it (operationId). The
 * unit test checks this table against the document, both ways.
 */
export const OPERATIONS = {
  submit: { method: 'POST', path: '/v1/tasks', operationId: 'createTask' },
  stream: { method: 'GET', path: '/v1/tasks/{id}/stream', operationId: 'streamTask' },
  cancel: { method: 'POST', path: '/v1/tasks/{id}/cancel', operationId: 'cancelTask' },
  session: { method: 'GET', path: '/v1/sessions/{id}', operationId: 'getSession' },
  deleteSession: { method: 'DELETE', path: '/v1/sessions/{id}', operationId: 'deleteSession' },
  poolHealth: { method: 'GET', path: '/v1/pools/{id}/health', operationId: 'getPoolHealth' },
  drain: { method: 'POST', path: '/v1/pools/{id}/drain', operationId: 'drainPool' },
  reload: { method: 'POST', path: '/v1/pools/{id}/reload', operationId: 'reloadPool' },
  resume: { method: 'POST', path: '/v1/pools/{id}/resume', operationId: 'resumePool' },
  replicaSets: { method: 'GET', path: '/v1/replicasets', operationId: 'listReplicaSets' },
  reloadConfig: { method: 'POST', path: '/v1/config/reload', operationId: 'reloadConfig' },
  revertConfig: { method: 'POST', path: '/v1/config/revert', operationId: 'revertConfig' },
  openApi: { method: 'GET', path: '/v1/openapi.json', operationId: 'getOpenApiDocument' },
} as const;

type Operation = keyof typeof OPERATIONS;

/**
 * A client for OrchQueue v1 on Node 20's fetch. `stream` is an async iterator that survives a dropped
 * connection (a restarted or dead gateway): it reconnects with `Last-Event-ID` and goes on from the next
 * token, on this gateway or, behind a load balancer, another.
 */
export class OrchClient {
  private readonly baseUrl: string;
  private readonly headers: Record<string, string>;
  private readonly maxStreamReconnects: number;
  private readonly reconnectDelayMs: number;
  private readonly fetch: typeof fetch;

  constructor(options: OrchClientOptions) {
    this.fetch = options.fetch ?? ((input, init) => fetch(input, init));
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.headers = { ...(options.apiKey ? { authorization: `Bearer ${options.apiKey}` } : {}), ...(options.headers ?? {}) };
    this.maxStreamReconnects = options.maxStreamReconnects ?? 20;
    this.reconnectDelayMs = options.reconnectDelayMs ?? 250;
  }

  submit(task: TaskRequest): Promise<AdmissionResponse> {
    return this.call('submit', {}, task);
  }

  /**
   * The task's frames: started, tokens, metrics, then end or error (the iterator ends after them). Resumes
   * after `lastEventId` when given. A connection that drops before the end is reopened with the last
   * frame's id; an answer other than 200 throws OrchApiError (503s are retried like a drop).
   */
  async *stream(taskId: string, options: { readonly lastEventId?: string | undefined; readonly signal?: AbortSignal | undefined } = {}): AsyncGenerator<StreamEvent, void, void> {
    let lastEventId = options.lastEventId;
    let reconnects = 0;
    for (;;) {
      let failure: unknown;
      try {
        const response = await this.fetch(this.url('stream', { id: taskId }), {
          headers: { ...this.headers, accept: 'text/event-stream', ...(lastEventId === undefined ? {} : { 'last-event-id': lastEventId }) },
          signal: options.signal ?? null,
        });
        if (response.status !== 200) {
          const error = await apiErrorOf(response);
          if (response.status !== 503) throw error;
          failure = error;
        } else if (response.body) {
          for await (const frame of parseSse(response.body)) {
            const event = toStreamEvent(frame.id, frame.event, frame.data);
            if (!event) continue;
            lastEventId = event.id;
            reconnects = 0;
            yield event;
            if (event.event === 'end' || event.event === 'error') return;
          }
        }
      } catch (error) {
        if (error instanceof OrchApiError || options.signal?.aborted) throw error;
        failure = error;
      }
      reconnects += 1;
      if (reconnects > this.maxStreamReconnects) throw new Error(`stream of task ${taskId} dropped ${reconnects} times in a row`, { cause: failure });
      await new Promise((resolve) => setTimeout(resolve, this.reconnectDelayMs));
    }
  }

  async cancel(taskId: string, reason?: string): Promise<void> {
    await this.call('cancel', { id: taskId }, reason === undefined ? undefined : { reason });
  }

  session(sessionId: string): Promise<SessionInfo> {
    return this.call('session', { id: sessionId });
  }

  async deleteSession(sessionId: string): Promise<void> {
    await this.call('deleteSession', { id: sessionId });
  }

  poolHealth(poolId: string): Promise<PoolHealth> {
    return this.call('poolHealth', { id: poolId });
  }

  drain(poolId: string, deadlineMs: number): Promise<PoolOperationAccepted> {
    return this.call('drain', { id: poolId }, { deadline_ms: deadlineMs });
  }

  /** ORCH-3033: a pool of several replicas reloads a canary first unless `options.strategy` is `all_at_once`. */
  reload(poolId: string, newModelRef: string, options: ReloadOptions = {}): Promise<PoolOperationAccepted> {
    return this.call('reload', { id: poolId }, { new_model_ref: newModelRef, ...options });
  }

  resume(poolId: string): Promise<PoolOperationAccepted> {
    return this.call('resume', { id: poolId });
  }

  /**
   * Follows a drain, resume or reload until it ends, through the pool's health (each replica's state is
   * there for a progress display); resolves with how it ended. Rejects after `timeoutMs` (default 10 min).
   */
  async waitForOperation(
    accepted: Pick<PoolOperationAccepted, 'operation_id' | 'pool_id'>,
    options: { readonly onProgress?: ((health: PoolHealth) => void) | undefined; readonly pollMs?: number | undefined; readonly timeoutMs?: number | undefined } = {},
  ): Promise<PoolOperationRecord> {
    const deadline = Date.now() + (options.timeoutMs ?? 600_000);
    for (;;) {
      const health = await this.poolHealth(accepted.pool_id);
      options.onProgress?.(health);
      const state = health.metrics['pool_state'] as { operation?: { id?: string } | null; last_operation?: PoolOperationRecord | null } | undefined;
      const last = state?.last_operation;
      if (last?.id === accepted.operation_id && state?.operation?.id !== accepted.operation_id) return last;
      if (Date.now() > deadline) throw new Error(`operation ${accepted.operation_id} has not ended after ${options.timeoutMs ?? 600_000} ms`);
      await new Promise((resolve) => setTimeout(resolve, options.pollMs ?? 500));
    }
  }

  replicaSets(): Promise<ReplicaSet[]> {
    return this.call('replicaSets', {});
  }

  reloadConfig(): Promise<ConfigChange> {
    return this.call('reloadConfig', {});
  }

  revertConfig(): Promise<ConfigChange> {
    return this.call('revertConfig', {});
  }

  openApi(): Promise<Record<string, unknown>> {
    return this.call('openApi', {});
  }

  /** GET /health (outside the OpenAPI document, like /metrics): the supervised processes; 503 is an answer too. */
  async stackHealth(): Promise<StackHealth> {
    const response = await this.fetch(`${this.baseUrl}/health`, { headers: this.headers });
    return (await response.json()) as StackHealth;
  }

  private url(operation: Operation, params: Readonly<Record<string, string>>): string {
    return this.baseUrl + OPERATIONS[operation].path.replace(/\{(\w+)\}/g, (_match, name: string) => encodeURIComponent(params[name] ?? ''));
  }

  private async call<T>(operation: Operation, params: Readonly<Record<string, string>>, body?: unknown): Promise<T> {
    const response = await this.fetch(this.url(operation, params), {
      method: OPERATIONS[operation].method,
      headers: { ...this.headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    if (!response.ok) throw await apiErrorOf(response);
    if (response.status === 204) return undefined as T;
    return (await response.json()) as T;
  }
}

async function apiErrorOf(response: Response): Promise<OrchApiError> {
  const text = await response.text();
  let envelope: ErrorEnvelope | undefined;
  try {
    const parsed = JSON.parse(text) as Partial<ErrorEnvelope>;
    if (typeof parsed.code === 'string' && typeof parsed.message === 'string') envelope = parsed as ErrorEnvelope;
  } catch {
    // not an envelope: the status says what we know
  }
  return new OrchApiError(response.status, envelope, text.slice(0, 200));
}

const EVENTS = new Set(['started', 'token', 'metrics', 'end', 'error']);

function toStreamEvent(id: string | undefined, event: string, data: string): StreamEvent | undefined {
  if (!EVENTS.has(event)) return undefined;
  return { id: id ?? '', event, data: JSON.parse(data) as never } as StreamEvent;
}
