/**
 * OrchQueue v1's shapes as the client sees them, written from the OpenAPI document (.specs/openapi.yaml).
 * test/unit/typescript-client.test.ts holds them against the server's own zod schemas, so a change on
 * either side fails the type check.
 */
export type Engine = 'llamacpp' | 'vllm' | 'tgi' | 'triton';
export type Priority = 'interactive' | 'batch';

export interface TaskRequest {
  task_id: string;
  session_id: string;
  workload: 'completion' | 'embedding' | 'rerank';
  model_ref: string;
  engine: Engine;
  ctx: number;
  priority: Priority;
  seed?: number | undefined;
  determinism?: 'strict' | 'best_effort' | undefined;
  sampler_profile_version?: 'v1' | undefined;
  prompt?: string | undefined;
  inputs?: string[] | undefined;
  max_tokens: number;
  deadline_ms: number;
  expected_tokens?: number | undefined;
  kv_hint?: 'reuse' | 'cold' | undefined;
}

export interface AdmissionResponse {
  task_id: string;
  queue_position: number;
  predicted_start_ms: number;
  backoff_ms: number;
}

export interface ErrorEnvelope {
  code: string;
  message: string;
  engine?: Engine | undefined;
  pool_id?: string | undefined;
  retriable: boolean;
  retry_after_ms?: number | undefined;
  policy_label?: string | undefined;
}

/** One SSE frame of a task's stream; `id` is its stream position (`Last-Event-ID` resumes after it). */
export type StreamEvent =
  | { readonly id: string; readonly event: 'started'; readonly data: { queue_position: number; predicted_start_ms: number } }
  | { readonly id: string; readonly event: 'token'; readonly data: { t: string; i: number } }
  | { readonly id: string; readonly event: 'metrics'; readonly data: Record<string, unknown> }
  | { readonly id: string; readonly event: 'end'; readonly data: { tokens_out: number; decode_ms: number; canceled?: boolean | undefined } }
  | { readonly id: string; readonly event: 'error'; readonly data: { code: string; message: string; engine?: string | undefined } };

export interface SessionInfo {
  ttl_ms_remaining: number;
  turns: number;
  kv_bytes: number;
  kv_warmth: boolean;
  kv_migrated: false;
  replica_id: string | null;
}

export interface PoolHealth {
  live: boolean;
  ready: boolean;
  draining: boolean;
  last_error: string | null;
  metrics: Record<string, unknown>;
}

export interface PoolOperationAccepted {
  operation_id: string;
  pool_id: string;
  kind: 'drain' | 'resume' | 'reload';
  mode: string;
  deadline_ms?: number | undefined;
  new_model_ref?: string | undefined;
  /** A reload's strategy as it runs (ORCH-3033): `canary` on a pool of more than one replica unless asked otherwise. */
  strategy?: ReloadStrategy | undefined;
  canary_observe_ms?: number | undefined;
}

export type ReloadStrategy = 'canary' | 'all_at_once';

/** `POST /v1/pools/{id}/reload` options beside the model ref; absent ones come from the server's config. */
export interface ReloadOptions {
  strategy?: ReloadStrategy | undefined;
  canary_observe_ms?: number | undefined;
}

/** A reload's progress (health's `metrics.pool_state.operation.reload`, kept in `last_operation`). */
export interface ReloadProgress {
  strategy: ReloadStrategy;
  phase: 'canary' | 'canary_observing' | 'rolling_out' | 'switched' | 'rolling_back';
  canary_replica_id: string | null;
  canary_observe_ms: number;
  steps: { phase: ReloadProgress['phase']; replica_ids: string[]; model_ref: string; at: string }[];
}

/** A pool operation once it ended (pool health's `metrics.pool_state.last_operation`). */
export interface PoolOperationRecord {
  id: string;
  kind: 'drain' | 'resume' | 'reload';
  started_at: string;
  outcome: 'completed' | 'rolled_back' | 'failed';
  /** Why a reload rolled back or an operation failed; null when it completed. */
  cause: string | null;
  finished_at: string;
  reload?: ReloadProgress | undefined;
}

export interface ReplicaSet {
  id: string;
  engine: Engine;
  load: number;
  slots_total: number;
  slots_free: number;
  slo: Record<string, unknown>;
  pool_id: string;
  replica_set_key: string;
  model_ref: string;
  quant: string | null;
  ctx: number;
  engine_version: string;
  sampler_profile_version: string;
  replicas: { replica_id: string; state: string; slots_busy: number; slots_total: number }[];
}

export interface ConfigChange {
  changed: string[];
  revertible: boolean;
}

/** GET /health (no key): what `npm start` supervises. */
export interface StackHealth {
  live: boolean;
  ready: boolean;
  processes: { name: string; role: string; state: string; pid: number | null; restarts: number; since: string; last_exit: string | null }[];
}
