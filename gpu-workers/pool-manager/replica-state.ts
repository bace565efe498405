import type { LaunchOutcome, ReplicaError, ReplicaState, ReplicaStatus } from '../../core/replica-status';
import { replicaSetKey } from '../../core/replica-set';
import type { EngineLoad } from './engine-load-sampler';

/**
 * Allowed transitions (docs/pool-lifecycle.md has the diagram). Anything else is a bug in the
 * supervisor, so it throws rather than report a state the replica is not in.
 */
const TRANSITIONS: Readonly<Record<ReplicaState, readonly ReplicaState[]>> = {
  starting: ['verifying', 'loading', 'unready', 'stopped'],
  verifying: ['loading', 'unready', 'stopped'],
  loading: ['self_test', 'ready', 'drained', 'unready', 'stopped'],
  self_test: ['ready', 'drained', 'unready', 'stopped'],
  ready: ['draining', 'stopped'],
  draining: ['drained', 'unready', 'stopped'],
  // A reload leaves through verifying/loading with the new model; a crash while drained through unready.
  drained: ['ready', 'verifying', 'loading', 'unready', 'stopped'],
  unready: ['restarting', 'breaker_open', 'stopped'],
  restarting: ['verifying', 'loading', 'unready', 'stopped'],
  breaker_open: ['restarting', 'stopped'],
  stopped: [],
};

/** States a launch (preload) passes through: leaving them for ready/drained or unready ends the launch. */
const LAUNCH_STATES: ReadonlySet<ReplicaState> = new Set(['starting', 'verifying', 'loading', 'self_test']);

/** States in which the engine process is up. */
const LIVE_STATES: ReadonlySet<ReplicaState> = new Set(['loading', 'self_test', 'ready', 'draining', 'drained']);

export interface ReplicaIdentityFields {
  readonly poolId: string;
  readonly replicaId: string;
  readonly host: string;
  readonly mockEngine: boolean;
  readonly engine: string;
  readonly modelRef: string;
  readonly quant: string | null;
  readonly ctx: number;
  readonly samplerProfileVersion: string;
}

export interface TransitionDetails {
  readonly error?: ReplicaError | undefined;
  readonly engineVersion?: string | undefined;
  readonly modelDigest?: string | undefined;
  readonly nextAttemptAtMs?: number | undefined;
  readonly cpuInferenceOverride?: boolean | undefined;
  /** The model the replica now serves (a reload changes it). */
  readonly modelRef?: string | undefined;
  /** The served model's quant, once its file is known (a reload may change it). */
  readonly quant?: string | null | undefined;
  /** The engine's slot count, once it is up. */
  readonly slotsTotal?: number | undefined;
  /** Counts this start as a restart after a failure. */
  readonly restart?: boolean | undefined;
  /** Ready on the replica's lane only: another replica set serves the pool queue (ORCH-3046). */
  readonly poolQueueStandby?: boolean | undefined;
  /** The launched engine is a test double, also one reached as `external` that announced itself. */
  readonly mockEngine?: boolean | undefined;
}

export type StatusListener = (status: ReplicaStatus) => void;

/** The replica's state and everything health reports about it; listeners hear every change. */
export class ReplicaStateMachine {
  private current: ReplicaStatus;
  private readonly listeners: StatusListener[] = [];
  private readonly loadListeners: StatusListener[] = [];

  constructor(identity: ReplicaIdentityFields, private readonly now: () => number = Date.now) {
    this.current = {
      version: 1,
      pool_id: identity.poolId,
      replica_id: identity.replicaId,
      host: identity.host,
      state: 'starting',
      live: false,
      ready: false,
      draining: false,
      engine_version: null,
      model_digest: null,
      last_error: null,
      restarts: 0,
      breaker_open: false,
      next_attempt_at: null,
      cpu_inference_override: false,
      mock_engine: identity.mockEngine,
      engine: identity.engine,
      model_ref: identity.modelRef,
      quant: identity.quant,
      ctx: identity.ctx,
      sampler_profile_version: identity.samplerProfileVersion,
      replica_set_key: null,
      slots_total: 0,
      slots_busy: 0,
      launch_outcomes: {},
      updated_at: new Date(this.now()).toISOString(),
    };
  }

  get status(): ReplicaStatus {
    return this.current;
  }

  get state(): ReplicaState {
    return this.current.state;
  }

  onChange(listener: StatusListener): void {
    this.listeners.push(listener);
  }

  /** Load changes are not state changes: they go to their own listeners (published throttled, not logged). */
  onLoadChange(listener: StatusListener): void {
    this.loadListeners.push(listener);
  }

  setSlotsBusy(slotsBusy: number): void {
    if (slotsBusy === this.current.slots_busy) return;
    this.current = { ...this.current, slots_busy: slotsBusy, updated_at: new Date(this.now()).toISOString() };
    for (const listener of this.loadListeners) listener(this.current);
  }

  /** The engine's KV use and in-flight tokens (engine-load-sampler.ts), published like slot load. */
  setEngineLoad(load: EngineLoad): void {
    if (load.kvUsedPermille === (this.current.kv_used_permille ?? null) && load.inflightTokens === (this.current.inflight_tokens ?? null)) return;
    this.current = { ...this.current, kv_used_permille: load.kvUsedPermille, inflight_tokens: load.inflightTokens, updated_at: new Date(this.now()).toISOString() };
    for (const listener of this.loadListeners) listener(this.current);
  }

  /** A standby that took the pool queue over (ORCH-3046): a state change for gateways, published at once. */
  leavePoolQueueStandby(): void {
    if (this.current.pool_queue_standby !== true) return;
    this.current = { ...withoutStandby(this.current), updated_at: new Date(this.now()).toISOString() };
    for (const listener of this.listeners) listener(this.current);
  }

  /** The replica's fast-start listener is up (ADR 2026-12-06): gateways may ask it to start tasks. */
  setFastStartUrl(url: string): void {
    this.current = { ...this.current, fast_start_url: url, updated_at: new Date(this.now()).toISOString() };
    // Not a state change: it goes out with the next load publication, not into the state history.
    for (const listener of this.loadListeners) listener(this.current);
  }

  canTransition(to: ReplicaState): boolean {
    return TRANSITIONS[this.current.state].includes(to);
  }

  transition(to: ReplicaState, details: TransitionDetails = {}): ReplicaStatus {
    const from = this.current.state;
    if (!this.canTransition(to)) throw new Error(`replica ${this.current.replica_id}: illegal transition ${from} → ${to}`);
    // A standby is one Ready period's fact: every transition says it again or clears it.
    const previous = withoutStandby(this.current);
    const engineVersion = details.engineVersion ?? previous.engine_version;
    const modelRef = details.modelRef ?? previous.model_ref;
    const quant = details.quant !== undefined ? details.quant : previous.quant;
    this.current = {
      ...previous,
      state: to,
      live: LIVE_STATES.has(to),
      ready: to === 'ready',
      draining: to === 'draining' || to === 'drained',
      engine_version: engineVersion,
      mock_engine: details.mockEngine ?? previous.mock_engine,
      model_ref: modelRef,
      quant,
      replica_set_key:
        engineVersion === null
          ? null
          : replicaSetKey({
              engine: previous.engine,
              model_ref: modelRef,
              quant,
              ctx: previous.ctx,
              engine_version: engineVersion,
              sampler_profile_version: previous.sampler_profile_version,
            }),
      slots_total: details.slotsTotal ?? previous.slots_total,
      // A replica that is not serving runs nothing.
      slots_busy: to === 'ready' || to === 'draining' || to === 'drained' ? previous.slots_busy : 0,
      // An engine that is not serving may be restarted empty: unknown until it is read again.
      ...(to === 'ready' || to === 'draining' || to === 'drained' ? {} : { kv_used_permille: null, inflight_tokens: null }),
      model_digest: details.modelDigest ?? previous.model_digest,
      // The last error stays visible after recovery (OC-POOL-3003): health shows the last cause.
      last_error: details.error ?? previous.last_error,
      restarts: previous.restarts + (details.restart === true ? 1 : 0),
      breaker_open: to === 'breaker_open',
      next_attempt_at: details.nextAttemptAtMs !== undefined ? new Date(details.nextAttemptAtMs).toISOString() : null,
      cpu_inference_override: details.cpuInferenceOverride ?? previous.cpu_inference_override,
      launch_outcomes: countLaunch(previous.launch_outcomes ?? {}, from, to, details.error),
      ...(to === 'ready' && details.poolQueueStandby === true ? { pool_queue_standby: true as const } : {}),
      updated_at: new Date(this.now()).toISOString(),
    };
    for (const listener of this.listeners) listener(this.current);
    return this.current;
  }
}

function withoutStandby(status: ReplicaStatus): ReplicaStatus {
  if (status.pool_queue_standby === undefined) return status;
  const copy: { -readonly [Key in keyof ReplicaStatus]: ReplicaStatus[Key] } = { ...status };
  delete copy.pool_queue_standby;
  return copy;
}

/** Counts a launch that just ended: Ready (or drained, an operator's Ready) or the kind of its failure. */
function countLaunch(
  counts: Readonly<Partial<Record<LaunchOutcome, number>>>,
  from: ReplicaState,
  to: ReplicaState,
  error: ReplicaError | undefined,
): Readonly<Partial<Record<LaunchOutcome, number>>> {
  if (!LAUNCH_STATES.has(from)) return counts;
  const outcome: LaunchOutcome | undefined = to === 'ready' || to === 'drained' ? 'ready' : to === 'unready' ? error?.kind : undefined;
  return outcome === undefined ? counts : { ...counts, [outcome]: (counts[outcome] ?? 0) + 1 };
}
