import { z } from 'zod';
import { ENGINES, FULL_QUEUE_POLICIES, PRIORITIES } from './engines';
import { PolicyPluginConfigSchema } from './policy-plugin-config';

/** Ids end up in task-queue names, metric labels and replica identities: keep them plain. */
const idSchema = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, 'letters, digits, ".", "_" or "-", at most 63');
const portSchema = z.int().min(0).max(65_535);
const msSchema = z.int().min(1);

function buildConfigSchema(strict: boolean) {
  // Strict mode rejects unknown fields (ORCH-3030); compat mode strips them and the loader warns.
  const object = <Shape extends z.ZodRawShape>(shape: Shape) => (strict ? z.strictObject(shape) : z.object(shape));

  const priorityClass = object({
    name: z.enum(PRIORITIES),
    queue_capacity: z.int().min(0).nullish(),
    rate_limit_rps: z.int().min(0).nullish(),
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
  ]);

  const pool = object({
    id: idSchema,
    engine: z.enum(ENGINES),
    model: z.string().min(1),
    quant: z.string().nullish(),
    ctx: z.int().min(1).nullish(),
    devices: z.array(z.int().min(0)).min(1),
    tensor_split: z.array(z.number().positive()).nullish(),
    preload: z.boolean().nullish(),
    require_same_engine_version: z.boolean().nullish(),
    sampler_profile_version: z.enum(['v1']).nullish(),
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
    }).default({ host: '127.0.0.1', port: 8080 }),
    streams: object({
      /** Frames kept per live stream for Last-Event-ID resume. */
      replay_buffer_frames: z.int().min(16).default(4096),
      /** How long a finished stream stays in memory for late readers before they are served from Temporal. */
      linger_ms: z.int().min(0).default(60_000),
    }).default({ replay_buffer_frames: 4096, linger_ms: 60_000 }),
    pools: z.array(pool).min(1),
  }).superRefine((config, context) => {
    const seen = new Set<string>();
    config.pools.forEach((pool, index) => {
      if (seen.has(pool.id)) context.addIssue({ code: 'custom', path: ['pools', index, 'id'], message: `duplicate pool id "${pool.id}"` });
      seen.add(pool.id);
      if (pool.tensor_split && pool.tensor_split.length !== pool.devices.length) {
        context.addIssue({ code: 'custom', path: ['pools', index, 'tensor_split'], message: 'needs one ratio per device' });
      }
    });
  });
}

const strictConfigSchema = buildConfigSchema(true);
const compatConfigSchema = buildConfigSchema(false);

export type OrchConfig = z.infer<typeof strictConfigSchema>;
export type PoolConfig = OrchConfig['pools'][number];

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
