import { z } from 'zod';

/**
 * The `auth`, `quotas` and `slo` sections of the config (issue 5). Kept out of config.ts so that file
 * only wires them in; `strict` says whether unknown fields are rejected.
 */

/** Tenants name quota entries, metric labels and the Temporal fairness key: plain, like client ids. */
export const TENANT_PATTERN = /^[A-Za-z0-9._:@-]{1,64}$/;
const tenantSchema = z.string().regex(TENANT_PATTERN, '1–64 letters, digits or ._:@-');

export const API_KEY_SCOPES = ['data', 'control'] as const;
export type ApiKeyScope = (typeof API_KEY_SCOPES)[number];

const GIB = 1024 * 1024 * 1024;

/** Defaults in one table, units in the names (style rule 11). */
export const SECURITY_DEFAULTS = {
  /** Generous on purpose: a bound that always holds, which operators tighten per tenant (docs/operations.md). */
  maxConcurrentJobs: 1_024,
  maxMemoryBytes: 1_024 * GIB,
  /** KV bytes per context token: fp16 Llama-3-8B (32 layers × 8 KV heads × 128 dims × 2 × 2 bytes). */
  kvBytesPerToken: 131_072,
  scratchBytesPerJob: 64 * 1024 * 1024,
  sloWindowMs: 60_000,
  sloMinSamples: 20,
  /** A floor, not a hardware figure: operators set 80% of their model's per-slot decode rate (spec §4.6). */
  sloBatchMinTokensPerSecond: 10,
  breakerBreachWindows: 3,
  breakerOpenMs: 30_000,
} as const;

export function buildSecuritySchemas(strict: boolean) {
  // As config.ts: strict mode rejects unknown fields (ORCH-3030), compat mode strips them.
  const object = <Shape extends z.ZodRawShape>(shape: Shape) => (strict ? z.strictObject(shape) : z.object(shape));
  const apiKey = object({
    /** Names the key in logs and metrics; the key itself never appears anywhere (OC-CTRL-2041). */
    id: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, '1–64 letters, digits, ".", "_" or "-"'),
    tenant: tenantSchema,
    scopes: z.array(z.enum(API_KEY_SCOPES)).min(1),
    /** SHA-256 of the key, hex: keys are never stored in clear text. */
    sha256: z.string().regex(/^[0-9a-f]{64}$/, '64 lowercase hex digits'),
  });

  const auth = object({
    /** `disabled` is for tests and closed networks only: X-Client-Id then names the client, unchecked. */
    mode: z.enum(['enabled', 'disabled']).default('enabled'),
    /** A JSON file `{ "keys": [ApiKey…] }`, relative to the working directory; read at start. */
    keys_file: z.string().min(1).nullish(),
    keys: z.array(apiKey).default([]),
    /** Accept the development key `npm start` mints into the data dir (`<data_dir>/dev-api-key.json`). */
    dev_key: z.boolean().default(false),
  });

  const quota = object({
    max_concurrent_jobs: z.int().min(0).nullish(),
    /** KV + scratch memory the tenant's queued and running jobs may reserve. */
    max_memory_bytes: z.int().min(0).nullish(),
  });

  const quotas = object({
    default: quota.prefault({}),
    tenants: z.array(object({ tenant: tenantSchema, max_concurrent_jobs: z.int().min(0).nullish(), max_memory_bytes: z.int().min(0).nullish() })).default([]),
    /** A job reserves ctx × kv_bytes_per_token + scratch_bytes_per_job (ORCH-3036). */
    kv_bytes_per_token: z.int().min(0).default(SECURITY_DEFAULTS.kvBytesPerToken),
    scratch_bytes_per_job: z.int().min(0).default(SECURITY_DEFAULTS.scratchBytesPerJob),
  });

  /** Per-priority SLOs (spec §4.6, ORCH-3041) and the breaker that sheds load on sustained breach (ORCH-3040). */
  const slo = object({
    window_ms: z.int().min(1_000).default(SECURITY_DEFAULTS.sloWindowMs),
    /** Fewer samples than this in a window: the window is not judged. */
    min_samples: z.int().min(1).default(SECURITY_DEFAULTS.sloMinSamples),
    interactive: object({
      ttft_p95_ms: z.int().min(1).default(900),
      /** p95 decode time for 64 tokens, scaled linearly to the task's length. */
      decode_64_p95_ms: z.int().min(1).default(2_500),
      max_error_rate: z.number().min(0).max(1).default(0.005),
    }).prefault({}),
    batch: object({
      max_error_rate: z.number().min(0).max(1).default(0.01),
      /** p95 decode rate per task (tokens_out / decode time); spec §4.6's 80% of theoretical tokens/s. */
      min_tokens_per_second: z.number().positive().default(SECURITY_DEFAULTS.sloBatchMinTokensPerSecond),
    }).prefault({}),
    breaker: object({
      enabled: z.boolean().default(true),
      /** Consecutive breached windows that open a pool's breaker. */
      breach_windows: z.int().min(1).default(SECURITY_DEFAULTS.breakerBreachWindows),
      open_ms: z.int().min(1).default(SECURITY_DEFAULTS.breakerOpenMs),
    }).prefault({}),
  });

  return { auth, quotas, slo };
}
