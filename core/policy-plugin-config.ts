import { z } from 'zod';

/**
 * The policy plugin of one pool (OC-POLICY-4010/4011), embedded by the pool config as e.g.
 * `policy_plugin: PolicyPluginConfigSchema.optional()`; absent means the built-in policy. Keys are
 * snake_case like the rest of the YAML config, objects strict so a misspelt key is an error, and
 * every default lives here with its unit.
 */

const NEVER_GRANTED =
  'cannot be granted in policy ABI 1.x: a policy decides from its snapshot alone (see .specs/policy-abi.md)';

export const PolicyPluginGrantsSchema = z.strictObject({
  /** wasi:clocks (wall and monotonic). Off by default: a clock makes decisions depend on time. */
  clocks: z.boolean().default(false),
  /** wasi:random (random, insecure, insecure-seed). Off by default: it breaks determinism. */
  random: z.boolean().default(false),
  /** Accepted only as `false`, so a config that asks for it fails loudly instead of being ignored. */
  filesystem: z.literal(false, { error: `filesystem ${NEVER_GRANTED}` }).default(false),
  network: z.literal(false, { error: `network ${NEVER_GRANTED}` }).default(false),
});

export const PolicyPluginLimitsSchema = z.strictObject({
  /** Per call: the worker running the plugin is terminated past this (wall time on its own thread). */
  call_timeout_ms: z.int().min(1).max(10_000).default(25),
  /** Linear memory of the plugin, all memories together; 16 MiB by default. */
  memory_bytes: z.int().min(64 * 1024).max(1024 * 1024 * 1024).default(16 * 1024 * 1024),
  /** V8 old-generation heap of the worker (the jco bindings' JavaScript objects), in MiB. */
  js_heap_mb: z.int().min(8).max(1024).default(32),
});

export const PolicyPluginBreakerSchema = z.strictObject({
  /** Consecutive failed calls (timeout, trap, memory, invalid decision) that disable the plugin. */
  failure_threshold: z.int().min(1).max(1000).default(5),
  /** How long a disabled plugin stays off before one trial call, in ms; 30 s by default. */
  cooldown_ms: z.int().min(100).max(3_600_000).default(30_000),
});

export const PolicyPluginConfigSchema = z.strictObject({
  /** Names the plugin in logs and outcomes. */
  id: z.string().regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, 'lowercase letters, digits, ".", "_" or "-", at most 64'),
  /** The plugin's own version (not the ABI's), logged with every decision. */
  version: z.string().min(1).max(64),
  /** The component (.wasm); a relative path is resolved against the host's `baseDir`. */
  path: z.string().min(1),
  /** Optional pin of the component's bytes; a mismatch fails start-up. */
  sha256: z.string().regex(/^[0-9a-f]{64}$/, '64 lowercase hex digits').optional(),
  grants: PolicyPluginGrantsSchema.default({ clocks: false, random: false, filesystem: false, network: false }),
  limits: PolicyPluginLimitsSchema.default({ call_timeout_ms: 25, memory_bytes: 16 * 1024 * 1024, js_heap_mb: 32 }),
  breaker: PolicyPluginBreakerSchema.default({ failure_threshold: 5, cooldown_ms: 30_000 }),
});

/** Parsed config, defaults applied. */
export type PolicyPluginConfig = z.infer<typeof PolicyPluginConfigSchema>;
/** Config as written (defaults optional). */
export type PolicyPluginConfigInput = z.input<typeof PolicyPluginConfigSchema>;
