import { performance } from 'node:perf_hooks';
import { OrchError } from '../../core/errors';
import { builtinPolicy } from '../builtin/builtin-policy';
import { admitSnapshot, placeSnapshot } from '../examples/sample-snapshots';
import type { PolicyPluginConfig, PolicyPluginConfigInput } from '../config';
import { PolicyPluginConfigSchema } from '../config';
import { POLICY_ABI_VERSION } from '../sdk/abi-version';
import type { AdmitDecision, NativePolicy, PlaceDecision } from '../sdk/decision';
import type { AdmitSnapshot, PlaceSnapshot } from '../sdk/snapshot';
import { AdmitSnapshotSchema, PlaceSnapshotSchema } from '../sdk/snapshot';
import type { DecodeResult } from '../sdk/wire';
import { decodeAdmitDecision, decodePlaceDecision } from '../sdk/wire';
import { Breaker } from './breaker';
import { loadPlugin } from './plugin-loader';
import type { SandboxFailureKind } from './plugin-sandbox';
import { PluginSandbox } from './plugin-sandbox';
import type { PolicyFunction } from './sandbox-protocol';

/** A pino-compatible logger: pino itself, a child of it, or a test sink. */
export interface PolicyLogger {
  info(object: Record<string, unknown>, message: string): void;
  warn(object: Record<string, unknown>, message: string): void;
  error(object: Record<string, unknown>, message: string): void;
}

/** Why the built-in policy answered instead of the configured plugin. */
export type FallbackReason = SandboxFailureKind | 'invalid-decision' | 'breaker-open';

/** Which policy produced a decision; the caller logs or exposes it as it sees fit. */
export type DecidedBy =
  | { readonly kind: 'plugin'; readonly pluginId: string; readonly pluginVersion: string }
  | { readonly kind: 'builtin'; readonly policyId: string; readonly policyVersion: string }
  | {
      readonly kind: 'builtin-fallback';
      readonly pluginId: string;
      readonly pluginVersion: string;
      readonly reason: FallbackReason;
      readonly detail: string;
    };

export interface PolicyOutcome<Decision> {
  readonly decision: Decision;
  readonly decidedBy: DecidedBy;
  /** Wall time of the whole decision, fallback included, in ms. */
  readonly latencyMs: number;
}
export type AdmitOutcome = PolicyOutcome<AdmitDecision>;
export type PlaceOutcome = PolicyOutcome<PlaceDecision>;

export interface PolicyHost {
  /** Admission for `snapshot.request`. Never rejects for a plugin's fault: it falls back instead. */
  admit(snapshot: AdmitSnapshot): Promise<AdmitOutcome>;
  /** Placement over `snapshot.candidates`. Same fallback rule. */
  place(snapshot: PlaceSnapshot): Promise<PlaceOutcome>;
  /** What is configured: the plugin (with its ABI version) or the built-in policy alone. */
  readonly active:
    | { readonly kind: 'plugin'; readonly pluginId: string; readonly pluginVersion: string; readonly abiVersion: string; readonly sha256: string }
    | { readonly kind: 'builtin'; readonly policyId: string; readonly policyVersion: string };
  /** Stops the plugin's worker. Later calls are answered by the built-in policy. */
  close(): Promise<void>;
}

export interface PolicyHostOptions {
  /** Resolves a relative `path` in the config; defaults to the working directory. */
  readonly baseDir?: string;
  /** The native policy to use alone or as the fallback; the built-in one by default. */
  readonly fallback?: NativePolicy;
  /** Clock for the breaker; `Date.now` by default. */
  readonly now?: () => number;
  /**
   * Validate every snapshot against the SDK's zod schemas before deciding (a bad one then throws
   * INTERNAL and is never charged to the plugin). Off by default: it costs about 30 µs per admit
   * snapshot of 64 queued tasks, the caller's types already guarantee the shape, and jco's own
   * lowering rejects out-of-range values. Turn it on in tests and while developing a caller.
   */
  readonly validateSnapshots?: boolean;
}

function describeAdmit(decision: AdmitDecision): string {
  if (decision.kind === 'reject') return `reject:${decision.code}`;
  if (decision.kind === 'shed') return `shed:${decision.victimTaskId}`;
  return 'accept';
}

function describePlace(decision: PlaceDecision): string {
  return decision.replicaIds.length === 0 ? 'none' : decision.replicaIds.join('>');
}

/** Validates a snapshot; a bad one is the caller's bug (INTERNAL), never charged to a plugin. */
function checked<T>(
  enabled: boolean,
  schema: { safeParse(value: unknown): { success: true; data: T } | { success: false; error: { message: string } } },
  fn: PolicyFunction,
  snapshot: T,
): T {
  if (!enabled) return snapshot;
  const parsed = schema.safeParse(snapshot);
  if (!parsed.success) throw new OrchError('INTERNAL', `invalid ${fn} snapshot: ${parsed.error.message}`);
  return parsed.data;
}

/**
 * Creates the policy host of one pool (ORCH-3048, OC-POLICY-4001..4020). With no plugin config it
 * answers with the native policy alone. With one, it loads and checks the plugin first and throws a
 * PolicyPluginLoadError naming the cause if the plugin is unusable, so a bad plugin fails start-up
 * instead of a later decision. Every decision is logged with the policy's id, version, decision and
 * latency.
 */
export async function createPolicyHost(
  config: PolicyPluginConfigInput | PolicyPluginConfig | undefined,
  logger: PolicyLogger,
  options: PolicyHostOptions = {},
): Promise<PolicyHost> {
  const fallback = options.fallback ?? builtinPolicy;
  const validate = options.validateSnapshots ?? false;
  if (config === undefined) return nativeHost(fallback, logger, validate);

  const pluginConfig = PolicyPluginConfigSchema.parse(config);
  const plugin = await loadPlugin(pluginConfig, options.baseDir ?? process.cwd());
  const sandbox = await PluginSandbox.start(plugin, pluginConfig);
  const warmUp = await warmUpPlugin(sandbox);
  const breaker = new Breaker({
    failureThreshold: pluginConfig.breaker.failure_threshold,
    cooldownMs: pluginConfig.breaker.cooldown_ms,
    now: options.now ?? Date.now,
  });
  const identity = { plugin_id: plugin.id, plugin_version: plugin.version, abi_version: plugin.abiVersion };
  logger.info(
    { ...identity, sha256: plugin.sha256, imports: plugin.imports, limits: pluginConfig.limits, grants: pluginConfig.grants, warm_up: warmUp },
    'policy plugin loaded',
  );

  async function decide<Snapshot extends AdmitSnapshot | PlaceSnapshot, Decision>(
    fn: PolicyFunction,
    snapshot: Snapshot,
    native: (snapshot: Snapshot) => Decision,
    decode: (lifted: unknown, snapshot: Snapshot) => DecodeResult<Decision>,
    describe: (decision: Decision) => string,
  ): Promise<PolicyOutcome<Decision>> {
    const started = performance.now();
    const context = { ...identity, policy_fn: fn, pool_id: snapshot.poolId, task_id: snapshot.request.taskId };
    let failure: { reason: FallbackReason; detail: string };
    if (!breaker.allow()) {
      failure = { reason: 'breaker-open', detail: `disabled after ${breaker.failures} consecutive failures` };
    } else {
      const result = await sandbox.call(fn, snapshot);
      const decoded: DecodeResult<Decision> | undefined = result.ok ? decode(result.value, snapshot) : undefined;
      if (decoded?.ok === true) {
        breaker.recordSuccess();
        const latencyMs = performance.now() - started;
        logger.info({ ...context, decided_by: 'plugin', decision: describe(decoded.value), latency_ms: latencyMs }, 'policy decision');
        return { decision: decoded.value, decidedBy: { kind: 'plugin', pluginId: plugin.id, pluginVersion: plugin.version }, latencyMs };
      }
      failure = result.ok
        ? { reason: 'invalid-decision', detail: decoded?.ok === false ? decoded.problem : 'undecodable' }
        : { reason: result.kind, detail: result.message };
      // A closed host is not the plugin's fault and must not trip the breaker.
      if (failure.reason !== 'closed' && breaker.recordFailure()) {
        logger.error(
          { ...identity, failures: breaker.failures, cooldown_ms: pluginConfig.breaker.cooldown_ms, reason: failure.reason },
          'policy plugin disabled by its breaker; the built-in policy decides until the cooldown ends',
        );
      }
    }
    const decision = native(snapshot);
    const latencyMs = performance.now() - started;
    logger.warn(
      {
        ...context,
        decided_by: 'builtin-fallback',
        fallback_reason: failure.reason,
        detail: failure.detail,
        decision: describe(decision),
        latency_ms: latencyMs,
      },
      'policy plugin failed; the built-in policy decided',
    );
    return {
      decision,
      decidedBy: { kind: 'builtin-fallback', pluginId: plugin.id, pluginVersion: plugin.version, ...failure },
      latencyMs,
    };
  }

  return {
    active: { kind: 'plugin', pluginId: plugin.id, pluginVersion: plugin.version, abiVersion: plugin.abiVersion, sha256: plugin.sha256 },
    admit: async (snapshot) =>
      decide('admit', checked(validate, AdmitSnapshotSchema, 'admit', snapshot), (checkedSnapshot) => fallback.admit(checkedSnapshot), decodeAdmitDecision, describeAdmit),
    place: async (snapshot) =>
      decide('place', checked(validate, PlaceSnapshotSchema, 'place', snapshot), (checkedSnapshot) => fallback.place(checkedSnapshot), decodePlaceDecision, describePlace),
    close: () => sandbox.close(),
  };
}

/** Calls per function made at start-up, before the first real decision. */
const WARM_UP_CALLS = 3;

/**
 * Runs the plugin on sample snapshots before the first real decision: V8 compiles wasm and the
 * bindings lazily, and a cold first call (several ms, more on a loaded machine) would otherwise
 * count against the first request's CPU bound. Results are ignored and never reach the breaker; a
 * plugin that fails here will fail (and fall back) on real calls too, and says so in the log.
 */
async function warmUpPlugin(sandbox: PluginSandbox): Promise<string> {
  const outcomes = new Set<string>();
  for (let call = 0; call < WARM_UP_CALLS; call += 1) {
    for (const [fn, snapshot] of [
      ['admit', admitSnapshot()],
      ['place', placeSnapshot()],
    ] as const) {
      const result = await sandbox.call(fn, snapshot);
      outcomes.add(result.ok ? 'ok' : result.kind);
    }
  }
  return [...outcomes].join(',');
}

/** The host without a plugin: the native policy answers, with the same outcome shape and logs. */
function nativeHost(policy: NativePolicy, logger: PolicyLogger, validate: boolean): PolicyHost {
  const identity = { policy_id: policy.id, policy_version: policy.version, abi_version: POLICY_ABI_VERSION };
  const decidedBy: DecidedBy = { kind: 'builtin', policyId: policy.id, policyVersion: policy.version };
  function run<Snapshot extends AdmitSnapshot | PlaceSnapshot, Decision>(
    fn: PolicyFunction,
    snapshot: Snapshot,
    decideNatively: (snapshot: Snapshot) => Decision,
    describe: (decision: Decision) => string,
  ): Promise<PolicyOutcome<Decision>> {
    const started = performance.now();
    const decision = decideNatively(snapshot);
    const latencyMs = performance.now() - started;
    logger.info(
      { ...identity, policy_fn: fn, pool_id: snapshot.poolId, task_id: snapshot.request.taskId, decided_by: 'builtin', decision: describe(decision), latency_ms: latencyMs },
      'policy decision',
    );
    return Promise.resolve({ decision, decidedBy, latencyMs });
  }
  return {
    active: { kind: 'builtin', policyId: policy.id, policyVersion: policy.version },
    admit: async (snapshot) => run('admit', checked(validate, AdmitSnapshotSchema, 'admit', snapshot), (checkedSnapshot) => policy.admit(checkedSnapshot), describeAdmit),
    place: async (snapshot) => run('place', checked(validate, PlaceSnapshotSchema, 'place', snapshot), (checkedSnapshot) => policy.place(checkedSnapshot), describePlace),
    close: () => Promise.resolve(),
  };
}
