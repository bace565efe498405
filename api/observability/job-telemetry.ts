import { describeTensorSplit } from '../../core/tensor-split';
import type { Logger } from 'pino';
import { TenantTokenWindow } from '../admission/tenant-token-window';
import type { PoolConfig } from '../../core/config';
import type { Priority } from '../../core/engines';
import { ErrorCode } from '../../core/errors';
import type { StreamPart, WorkerChunk } from '../../core/stream-parts';
import type { OrchMetrics } from './metrics';
import type { SloTracker } from './slo-tracker';

/** Records kept for tasks this gateway admitted and has not seen end; past this the oldest are dropped. */
const MAX_TRACKED_JOBS = 100_000;
/** Before the engine has counted a prompt (the dispatch line), tokens_in is estimated from its size. */
const BYTES_PER_TOKEN_ESTIMATE = 4;
const UNKNOWN = 'unknown';
const UNASSIGNED = 'unassigned';

export interface AdmittedJob {
  readonly taskId: string;
  readonly sessionId: string;
  readonly clientId: string;
  readonly pool: PoolConfig;
  readonly engine: string;
  readonly priority: Priority;
  readonly modelId: string;
  readonly ctx: number;
  readonly samplerProfileVersion: string;
  readonly prompt: string | undefined;
  /** The prompt's tokens as a replica's tokenizer counted them at admission (ORCH-3015), when it was counted. */
  readonly promptTokens?: number | undefined;
  /** What admission predicted (ORCH-3029); the dispatch line sets it beside what happened. */
  readonly predictedStartMs: number;
}

/** Kept per queued task, so compact: the prompt itself is not kept, only its size for tokens_in. */
interface JobRecord extends Omit<AdmittedJob, 'prompt'> {
  readonly promptBytes: number;
  /** The engine's own count of the prompt's tokens: from admission's count, then the worker's `end` (issue 13: not bytes ÷ 4). */
  engineTokensIn: number | undefined;
  readonly admittedAt: number;
  replicaId: string;
  engineVersion: string;
  kvWarmth: boolean;
  queueTimeMs: number | undefined;
  firstTokenAt: number | undefined;
  dispatched: boolean;
  /** The last chunk seen: workers resend a chunk whose answer they missed, and each counts once. */
  lastAttempt: number;
  lastSeq: number;
  evictionEvents: number;
  oomEvents: number;
  driverResetEvents: number;
}

export type JobEnd =
  | { readonly kind: 'end'; readonly tokensOut: number; readonly decodeMs: number }
  | { readonly kind: 'error'; readonly code: string; readonly message: string }
  | { readonly kind: 'cancelled'; readonly reason: 'client' | 'drop-lru' };

/**
 * The gateway's view of each job's lifecycle, turned into the ORCH-3027 log lines (`task dispatched`,
 * `task finished`, each with every required field) and the lint metrics (ORCH-3028). Fed by the task
 * routes (admitted, cancelled), the internal channel (worker chunks, terminal reports) and the error
 * handler (rejections); it holds no state another gateway would need.
 */
export class JobTelemetry {
  private readonly jobs = new Map<string, JobRecord>();
  /** The engine version each pool last reported, for labels of tasks not yet on a replica. */
  private readonly engineVersions = new Map<string, string>();
  /** Tokens each tenant's tasks ended with over the last minute; admission policies read it. */
  readonly tenantTokens = new TenantTokenWindow();

  constructor(
    private readonly metrics: OrchMetrics,
    private readonly logger: Logger,
    private readonly slo: SloTracker,
  ) {}

  admitted(job: AdmittedJob): void {
    if (this.jobs.size >= MAX_TRACKED_JOBS) {
      const oldest = this.jobs.keys().next();
      if (!oldest.done) this.jobs.delete(oldest.value);
    }
    const engineVersion = this.engineVersions.get(job.pool.id) ?? UNKNOWN;
    this.jobs.set(job.taskId, {
      predictedStartMs: job.predictedStartMs,
      taskId: job.taskId,
      sessionId: job.sessionId,
      clientId: job.clientId,
      pool: job.pool,
      engine: job.engine,
      priority: job.priority,
      modelId: job.modelId,
      ctx: job.ctx,
      samplerProfileVersion: job.samplerProfileVersion,
      promptBytes: Buffer.byteLength(job.prompt ?? '', 'utf8'),
      // The engine's tokenizer counted it at admission when the budget check asked (ORCH-3015); the worker's end confirms it.
      engineTokensIn: job.promptTokens,
      admittedAt: performance.now(),
      replicaId: UNASSIGNED,
      engineVersion,
      kvWarmth: false,
      queueTimeMs: undefined,
      firstTokenAt: undefined,
      dispatched: false,
      lastAttempt: 0,
      lastSeq: -1,
      evictionEvents: 0,
      oomEvents: 0,
      driverResetEvents: 0,
    });
  }

  /**
   * The task's workflow exists: it counts as enqueued. Separate from `admitted`, which a fast start calls
   * before the workflow is written so the replica's first frames find the job (ADR 2026-12-06).
   */
  enqueued(taskId: string): void {
    const job = this.jobs.get(taskId);
    if (!job) return;
    this.metrics.inc('tasksEnqueued', { engine: job.engine, engine_version: this.engineVersions.get(job.pool.id) ?? UNKNOWN, pool_id: job.pool.id, replica_id: UNASSIGNED, priority: job.priority });
  }

  /** The workflow was never written (Temporal unreachable, or a duplicate): the job is forgotten uncounted. */
  discard(taskId: string): void {
    this.jobs.delete(taskId);
  }

  /** A refused submission (ORCH-2007 reasons) and, for a 429, the backpressure policy that answered. */
  rejected(engine: string, code: string, policyLabel: string | undefined, httpStatus: number): void {
    this.metrics.inc('tasksRejected', { engine, reason: code });
    if (httpStatus === 429) this.metrics.inc('backpressureEvents', { engine, policy: policyLabel ?? 'reject' });
  }

  /** Every typed error answered over HTTP, by code (OC-CTRL-2051 "error counts by class"). */
  httpError(code: string): void {
    this.metrics.inc('errors', { code, surface: 'http' });
  }

  chunk(taskId: string, chunk: WorkerChunk): void {
    const job = this.jobs.get(taskId);
    if (!job) return;
    const isNew = chunk.attempt > job.lastAttempt || (chunk.attempt === job.lastAttempt && chunk.seq > job.lastSeq);
    if (!isNew) return;
    job.lastAttempt = chunk.attempt;
    job.lastSeq = chunk.seq;
    for (const part of chunk.parts) {
      if (part.type === 'metrics') this.onMetrics(job, part.values, chunk.attempt);
      else if (part.type === 'token') job.firstTokenAt ??= performance.now();
      else if (part.type === 'end') {
        job.engineTokensIn = part.tokensIn ?? job.engineTokensIn;
        this.finish(job, { kind: 'end', tokensOut: part.tokensOut, decodeMs: part.decodeMs });
      }
      else this.finish(job, { kind: 'error', code: part.code, message: part.message });
    }
  }

  /** The workflow's report of how a task ended, for tasks whose worker did not end the stream itself. */
  terminal(taskId: string, part: Extract<StreamPart, { type: 'end' | 'error' }> | { readonly type: 'cancelled' }): void {
    const job = this.jobs.get(taskId);
    if (!job) return;
    if (part.type === 'end') this.finish(job, { kind: 'end', tokensOut: part.tokensOut, decodeMs: part.decodeMs });
    else if (part.type === 'error') this.finish(job, { kind: 'error', code: part.code, message: part.message });
    else this.finish(job, { kind: 'cancelled', reason: 'client' });
  }

  cancelled(taskId: string, reason: 'client' | 'drop-lru'): void {
    const job = this.jobs.get(taskId);
    if (!job) return;
    if (reason === 'drop-lru') job.evictionEvents += 1;
    this.finish(job, { kind: 'cancelled', reason });
  }

  /** Running jobs per pool with their ctx, for the KV-pressure gauge. */
  runningContexts(poolId: string): number[] {
    return [...this.jobs.values()].filter((job) => job.pool.id === poolId && job.dispatched).map((job) => job.ctx);
  }

  engineVersionOf(poolId: string): string {
    return this.engineVersions.get(poolId) ?? UNKNOWN;
  }

  private onMetrics(job: JobRecord, values: Readonly<Record<string, unknown>>, attempt: number): void {
    const counter = (name: string): number => (typeof values[name] === 'number' ? values[name] : 0);
    job.oomEvents += counter('oom_events');
    job.driverResetEvents += counter('driver_reset_events');
    // The replica knows whether a session's cache was really reused only once the turn ran (ORCH-3022).
    if (values['phase'] === 'kv' && typeof values['kv_warmth'] === 'boolean') job.kvWarmth = values['kv_warmth'];
    if (values['phase'] !== 'dispatched') return;
    if (typeof values['replica_id'] === 'string') job.replicaId = values['replica_id'];
    if (typeof values['engine_version'] === 'string') {
      job.engineVersion = values['engine_version'];
      this.engineVersions.set(job.pool.id, values['engine_version']);
    }
    if (typeof values['kv_warmth'] === 'boolean') job.kvWarmth = values['kv_warmth'];
    if (typeof values['queue_time_ms'] === 'number') job.queueTimeMs = values['queue_time_ms'];
    const firstDispatch = !job.dispatched;
    job.dispatched = true;
    this.metrics.inc('tasksStarted', { ...this.taskLabels(job), priority: job.priority });
    // ORCH-3029: the prediction checked against what happened, on every dispatch (signed: late is positive).
    const predictionErrorMs = job.queueTimeMs === undefined ? null : job.queueTimeMs - job.predictedStartMs;
    if (predictionErrorMs !== null && firstDispatch) {
      this.metrics.observe('startPredictionError', { pool_id: job.pool.id, priority: job.priority }, Math.abs(predictionErrorMs));
    }
    this.logger.info(
      { ...this.logFields(job), attempt, tokens_in: this.tokensIn(job), tokens_out: 0, decode_time_ms: null, predicted_start_ms: job.predictedStartMs, start_prediction_error_ms: predictionErrorMs },
      'task dispatched',
    );
  }

  private finish(job: JobRecord, end: JobEnd): void {
    this.jobs.delete(job.taskId);
    const now = performance.now();
    const poolLabels = { engine: job.engine, engine_version: job.engineVersion, pool_id: job.pool.id, priority: job.priority };
    const tokensOut = end.kind === 'end' ? end.tokensOut : 0;
    const ttftMs = job.firstTokenAt === undefined ? undefined : job.firstTokenAt - job.admittedAt;
    if (ttftMs !== undefined) this.metrics.observe('latencyFirstToken', poolLabels, ttftMs);
    if (end.kind === 'end') {
      this.metrics.observe('latencyDecode', poolLabels, end.decodeMs);
      this.metrics.inc('tokensOut', this.taskLabels(job), end.tokensOut);
      this.tenantTokens.record(job.clientId, end.tokensOut + this.tokensIn(job));
    }
    if (job.dispatched) this.metrics.inc('tokensIn', this.taskLabels(job), this.tokensIn(job));
    if (end.kind === 'cancelled') this.metrics.inc('tasksCanceled', { ...this.taskLabels(job), reason: end.reason });
    if (end.kind === 'error') this.metrics.inc('errors', { code: end.code, surface: 'stream' });
    // Evictions are a queue policy's choice and client cancels the client's: neither counts against an SLO.
    if (end.kind !== 'cancelled' && !(end.kind === 'error' && end.code === ErrorCode.QUEUE_FULL_DROP_LRU)) {
      this.slo.record({
        poolId: job.pool.id,
        priority: job.priority,
        at: now,
        ttftMs,
        decodeMs: end.kind === 'end' ? end.decodeMs : undefined,
        tokensOut,
        ok: end.kind === 'end',
      });
    }
    this.logger.info(
      {
        ...this.logFields(job),
        outcome: end.kind === 'end' ? 'completed' : end.kind === 'error' ? 'failed' : 'cancelled',
        ...(end.kind === 'error' ? { error_code: end.code } : {}),
        ...(end.kind === 'cancelled' ? { cancel_reason: end.reason } : {}),
        tokens_in: this.tokensIn(job),
        tokens_out: tokensOut,
        decode_time_ms: end.kind === 'end' ? end.decodeMs : null,
        ttft_ms: ttftMs === undefined ? null : Math.round(ttftMs),
      },
      'task finished',
    );
  }

  private taskLabels(job: JobRecord) {
    return { engine: job.engine, engine_version: job.engineVersion, pool_id: job.pool.id, replica_id: job.replicaId };
  }

  private tokensIn(job: JobRecord): number {
    return job.engineTokensIn ?? Math.ceil(job.promptBytes / BYTES_PER_TOKEN_ESTIMATE);
  }

  /** The ORCH-3027 / OC-CORE-1040 fields every lifecycle line carries (`job_id` is the task id). */
  private logFields(job: JobRecord): Record<string, unknown> {
    return {
      job_id: job.taskId,
      session_id: job.sessionId,
      client_id: job.clientId,
      engine: job.engine,
      pool_id: job.pool.id,
      replica_id: job.replicaId,
      model_id: job.modelId,
      quant: job.pool.quant ?? null,
      ctx: job.ctx,
      // What the engine was given, as the worker's lines say it (never the raw config on one device).
      tensor_split: describeTensorSplit(job.pool.devices, job.pool.tensor_split),
      engine_version: job.engineVersion,
      sampler_profile_version: job.samplerProfileVersion,
      priority: job.priority,
      kv_warmth: job.kvWarmth,
      queue_time_ms: job.queueTimeMs ?? null,
      eviction_events: job.evictionEvents,
      oom_events: job.oomEvents,
      driver_reset_events: job.driverResetEvents,
    };
  }
}
