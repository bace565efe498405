import { z } from 'zod';
import { ENGINES } from '../../core/engines';
import { ERROR_CODES } from '../../core/errors';
import { MAX_DRAIN_DEADLINE_MS, POOL_MODES, POOL_OPERATION_KINDS, RELOAD_STRATEGIES } from '../../core/pool-state';

/**
 * Response shapes of the public API as zod schemas: the OpenAPI document is generated from these and
 * from core/task-request.ts (ORCH-3044), and the contract test validates live responses with them.
 */
export const AdmissionResponseSchema = z.strictObject({
  task_id: z.uuid(),
  queue_position: z.int().min(0),
  predicted_start_ms: z.int().min(0),
  backoff_ms: z.int().min(0),
});

export const ErrorEnvelopeSchema = z
  .strictObject({
    code: z.enum(ERROR_CODES),
    message: z.string(),
    engine: z.enum(ENGINES).optional(),
    pool_id: z.string().optional(),
    retriable: z.boolean(),
    retry_after_ms: z.int().min(0).optional(),
    policy_label: z.string().optional(),
  })
  .meta({ 'x-req-id': ['ORCH-2006', 'OC-CTRL-2030', 'OC-CTRL-2031'] });

export const PoolHealthSchema = z.object({
  live: z.boolean(),
  ready: z.boolean(),
  draining: z.boolean(),
  /** OC-POOL-3003: the last error cause, kept after recovery; null when there is none. */
  last_error: z.string().nullable(),
  metrics: z.record(z.string(), z.unknown()),
});

/** ORCH-2101: the drain's deadline; in-flight tasks still running at it end with POOL_UNAVAILABLE. */
export const DrainRequestSchema = z.strictObject({ deadline_ms: z.int().min(0).max(MAX_DRAIN_DEADLINE_MS) });

/**
 * ORCH-2102: a catalog model ref (llama-server pools) or a `mock:` ref (mock pools). ORCH-3033 (llama-orch's
 * additions): `strategy` overrides the config's `control.reload_strategy` (`canary`: one replica first, then
 * the rest; `all_at_once`), `canary_observe_ms` its `control.reload_canary_observe_ms`.
 */
export const ReloadRequestSchema = z.strictObject({
  new_model_ref: z.string().min(1).max(256),
  strategy: z.enum(RELOAD_STRATEGIES).optional(),
  canary_observe_ms: z.int().min(0).max(MAX_DRAIN_DEADLINE_MS).optional(),
});

/** 202 of a pool operation (drain, resume, reload): its workflow id, to follow in the Web UI and in health. */
export const PoolOperationAcceptedSchema = z.strictObject({
  operation_id: z.string(),
  pool_id: z.string(),
  kind: z.enum(POOL_OPERATION_KINDS),
  mode: z.enum(POOL_MODES),
  deadline_ms: z.int().min(0).optional(),
  new_model_ref: z.string().optional(),
  /** A reload's strategy as it runs: `canary` needs more than one replica, else the reload runs all at once. */
  strategy: z.enum(RELOAD_STRATEGIES).optional(),
  canary_observe_ms: z.int().min(0).optional(),
});

/** OC-CTRL-2004: spec §2.9 ReplicaSet (id, engine, load, slots, slo) plus llama-orch's additive fields. */
export const ReplicaSetSchema = z.object({
  id: z.string(),
  engine: z.enum(ENGINES),
  load: z.number().min(0).max(1),
  slots_total: z.int().min(0),
  slots_free: z.int().min(0),
  slo: z.record(z.string(), z.unknown()),
  pool_id: z.string(),
  replica_set_key: z.string(),
  model_ref: z.string(),
  quant: z.string().nullable(),
  ctx: z.int().min(1),
  engine_version: z.string(),
  sampler_profile_version: z.string(),
  replicas: z.array(z.object({ replica_id: z.string(), state: z.string(), slots_busy: z.int().min(0), slots_total: z.int().min(0) })),
});

/** ORCH-3031: a config hot reload or revert that was applied: the live fields it changed. */
export const ConfigChangeSchema = z.strictObject({ changed: z.array(z.string()), revertible: z.boolean() });

/** SSE payloads (spec §2.7 [R]); informative in the document as `x-sse-events`. */
export const SseEventSchemas = {
  started: z.object({ queue_position: z.int().min(0), predicted_start_ms: z.int().min(0) }),
  token: z.object({ t: z.string(), i: z.int().min(0) }),
  metrics: z.record(z.string(), z.unknown()),
  end: z.object({ tokens_out: z.int().min(0), decode_ms: z.number().min(0), canceled: z.boolean().optional() }),
  error: z.object({ code: z.enum(ERROR_CODES), message: z.string(), engine: z.enum(ENGINES).optional() }),
} as const;
