import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { ErrorCode } from '../../core/errors';
import { describeQuant } from '../models/model-quant';
import type { EngineLauncher, LaunchedEngine } from './engine-launcher';
import type { MembershipVerdict, PoolQueueGate } from './pool-queue-membership';
import type { QueuePoller } from './queue-poller';
import { asReplicaFailure, ReplicaFailure } from './replica-failure';
import type { ReplicaEventCounters } from './replica-events';
import type { ReplicaStateMachine, TransitionDetails } from './replica-state';
import type { RestartPolicy } from './restart-policy';

export interface ReplicaSupervisorOptions {
  readonly machine: ReplicaStateMachine;
  readonly launcher: EngineLauncher;
  readonly policy: RestartPolicy;
  readonly poller: Pick<QueuePoller, 'start' | 'stop' | 'drain'>;
  readonly logger: Logger;
  readonly now?: () => number;
  readonly events?: ReplicaEventCounters | undefined;
  /** The model the replica serves until the pool's state or a reload says otherwise. */
  readonly modelRef: string;
  /** The pool's configured `quant`, if any. */
  readonly declaredQuant?: string | null | undefined;
  /**
   * The pool's desired state at start (core/pool-state.ts): a drained pool's replica comes up without
   * polling, and a reloaded pool's replica on the pool's current model.
   */
  readonly initialState?: (() => Promise<{ readonly drained: boolean; readonly modelRef: string | null }>) | undefined;
  /**
   * ORCH-3046 / OC-CORE-1031: asked before the replica goes Ready and watched while it is: another replica set on
   * the pool queue makes it a standby (its lane only), or refuses it (require_same_engine_version). Absent: it polls.
   */
  readonly poolQueueGate?: Pick<PoolQueueGate, 'decide' | 'watch'> | undefined;
}

type ServingOutcome = { readonly kind: 'stop' } | { readonly kind: 'crash'; readonly failure: ReplicaFailure } | { readonly kind: 'poller-failed'; readonly error: Error };
type ControlRequest = { readonly kind: 'drain'; readonly deadlineMs: number } | { readonly kind: 'resume' } | { readonly kind: 'reload' };
type ServingPhaseOutcome = ServingOutcome | { readonly kind: 'control'; readonly request: ControlRequest } | { readonly kind: 'reload' };

interface PendingReload {
  readonly target: string;
  readonly previous: string;
  readonly done: Promise<void>;
  /** Set when the new model failed: the reload rejects with it once the previous model is back up. */
  failure?: ReplicaFailure;
  resolve(): void;
  reject(failure: ReplicaFailure): void;
}

/**
 * The pool manager's loop for one replica (design §4): launch the engine, poll only while Ready, and
 * on a failure drain, go Unready and restart per the restart policy (backoff, circuit breaker).
 */
export class ReplicaSupervisor {
  private readonly stopController = new AbortController();
  private readonly stopRequested: Promise<ServingOutcome>;
  private engine: LaunchedEngine | undefined;
  private lastEngine: LaunchedEngine | undefined;
  private readonly now: () => number;
  /** An operator drained the pool: serve without polling until resumed (design §5). */
  private drained = false;
  private controlRequest: ((request: ControlRequest) => void) | undefined;
  private readonly settledWaiters = new Set<() => void>();
  private drainDeadlineMs = 0;
  private modelRef: string;
  private reloading: PendingReload | undefined;
  private lastDrainAborted = 0;

  constructor(private readonly options: ReplicaSupervisorOptions) {
    this.now = options.now ?? Date.now;
    this.modelRef = options.modelRef;
    this.stopRequested = new Promise((resolve) => {
      this.stopController.signal.addEventListener('abort', () => resolve({ kind: 'stop' }), { once: true });
    });
  }

  /** The engine currently serving, or the last one that did (tests read its slots). */
  get currentEngine(): LaunchedEngine | undefined {
    return this.engine ?? this.lastEngine;
  }

  get servingEngine(): LaunchedEngine | undefined {
    return this.engine;
  }

  requestStop(): void {
    this.stopController.abort();
    // A drain waiting for its deadline would hold the shutdown that long: cut it to the shutdown grace.
    if (this.options.machine.state === 'draining') void this.options.poller.stop();
    this.notifySettled();
  }

  /**
   * Stops polling (ORCH-2101): in-flight tasks finish, and those still running at the deadline are aborted
   * with POOL_UNAVAILABLE; the engine stays up. Resolves once the replica polls no more — at once when it
   * is not serving (it comes up drained). Idempotent: a retried drain on a drained replica succeeds.
   */
  async drain(deadlineMs: number): Promise<{ aborted: number }> {
    this.drained = true;
    this.drainDeadlineMs = deadlineMs;
    this.lastDrainAborted = 0;
    this.controlRequest?.({ kind: 'drain', deadlineMs });
    await this.settled(() => this.options.machine.state !== 'ready' && this.options.machine.state !== 'draining');
    return { aborted: this.lastDrainAborted };
  }

  /** Undoes a drain: polls again once the engine serves; at once when it is not serving (it comes up polling). */
  async resume(): Promise<void> {
    this.drained = false;
    this.controlRequest?.({ kind: 'resume' });
    await this.settled(() => this.options.machine.state !== 'drained');
  }

  get isDrained(): boolean {
    return this.drained;
  }

  /**
   * ORCH-2102: restarts the engine on `modelRef` through the same launch path (checksum, headroom,
   * self-test) and stays drained. Resolves once the engine serves the new model; rejects with the launch's
   * failure once the replica is back on its previous model (still drained), so a rollback is complete when
   * the caller hears of it.
   * Idempotent: a retried reload on a replica that already serves the model resolves at once.
   */
  async reload(modelRef: string): Promise<void> {
    // Already there (a canary that restarted onto the pool's model and is rolled back to it): nothing to do.
    if (!this.reloading && this.modelRef === modelRef && this.engine?.modelRef === modelRef && (this.options.machine.state === 'drained' || this.options.machine.state === 'ready')) return;
    if (!this.drained) throw new ReplicaFailure(ErrorCode.POOL_UNAVAILABLE, 'config_mismatch', 'a replica is reloaded only while drained', false);
    if (this.reloading) {
      if (this.reloading.target !== modelRef) throw new ReplicaFailure(ErrorCode.POOL_UNAVAILABLE, 'config_mismatch', `already reloading to ${this.reloading.target}`, false);
      return this.reloading.done;
    }
    if (this.modelRef === modelRef && this.options.machine.state === 'drained') return;
    let resolve: () => void = () => undefined;
    let reject: (failure: ReplicaFailure) => void = () => undefined;
    const done = new Promise<void>((onResolve, onReject) => {
      resolve = onResolve;
      reject = onReject;
    });
    this.reloading = { target: modelRef, previous: this.modelRef, done, resolve, reject };
    this.modelRef = modelRef;
    this.controlRequest?.({ kind: 'reload' });
    return done;
  }

  /**
   * ORCH-3033: a reload's canary check. Passes while the replica is up and drained on `modelRef` and its
   * engine passes the self-test again (a health check where the runtime has none); otherwise throws why
   * (its last error when the engine failed meanwhile).
   */
  async check(modelRef: string): Promise<void> {
    const { machine } = this.options;
    const engine = this.engine;
    if (machine.state !== 'drained' || engine?.modelRef !== modelRef) {
      const lastError = machine.status.last_error;
      const why = lastError ? `; last error ${lastError.code} (${lastError.kind}): ${lastError.message}` : '';
      throw new ReplicaFailure(lastError?.code ?? ErrorCode.WORKER_RESET, lastError?.kind ?? 'engine_exit', `the replica is ${machine.state} on ${engine?.modelRef ?? machine.status.model_ref}, not drained on ${modelRef}${why}`);
    }
    if (engine.selfTest) {
      await engine.selfTest();
      return;
    }
    const health = await engine.adapter.health();
    if (!health.ready) throw new ReplicaFailure(ErrorCode.WORKER_RESET, 'engine_exit', `the engine is not ready${health.detail ? `: ${health.detail}` : ''}`);
  }

  private settleReload(failure?: ReplicaFailure): void {
    const pending = this.reloading;
    if (!pending) return;
    this.reloading = undefined;
    if (failure) pending.reject(failure);
    else pending.resolve();
  }

  private settled(done: () => boolean): Promise<void> {
    return new Promise((resolve) => {
      const check = (): void => {
        if (!done() && !this.stopping) return;
        this.settledWaiters.delete(check);
        resolve();
      };
      this.settledWaiters.add(check);
      check();
    });
  }

  private notifySettled(): void {
    for (const waiter of [...this.settledWaiters]) waiter();
  }

  private get stopping(): boolean {
    return this.stopController.signal.aborted;
  }

  /** Runs until stopped; rejects only when polling fails for a reason that is not the engine's. */
  async run(): Promise<void> {
    const { machine, launcher, logger } = this.options;
    try {
      let cpuInference: boolean;
      try {
        ({ cpuInference } = await launcher.checkHost());
      } catch (error) {
        await this.fail(asReplicaFailure(error));
        return;
      }
      const initial = await this.options.initialState?.();
      if (initial?.drained === true) this.drained = true;
      if (initial?.modelRef) this.modelRef = initial.modelRef;
      if (cpuInference) {
        logger.warn(
          'DEVELOPMENT OVERRIDE (ORCH-1101): no usable NVIDIA GPU, inference runs on the CPU because dev.allow_cpu_inference / ORCH_DEV_ALLOW_CPU_INFERENCE is set — never in production',
        );
      }
      while (!this.stopping) {
        let engine: LaunchedEngine;
        try {
          engine = await launcher.launch({ enter: (phase) => machine.transition(phase, { cpuInferenceOverride: cpuInference, modelRef: this.modelRef }) }, this.modelRef);
        } catch (error) {
          if (this.stopping) return;
          const failure = asReplicaFailure(error);
          const reload = this.reloading;
          if (reload?.target === this.modelRef && reload.failure === undefined) {
            // The reload's model failed its start-up checks: report it, then go straight back to the previous
            // model (a rollback, not a restart storm; the restart policy is for faults of a serving engine).
            machine.transition('unready', { error: failure.toReplicaError(this.now()) });
            logger.error({ code: failure.code, cause: failure.kind, model_ref: this.modelRef, previous_model_ref: reload.previous, err: failure }, 'reload failed; going back to the previous model');
            this.modelRef = reload.previous;
            reload.failure = failure;
            machine.transition('restarting', {});
            continue;
          }
          // A pending reload whose rollback launch failed too: report it now; the restart policy takes over.
          this.settleReload(this.reloading?.failure ?? failure);
          if (!(await this.fail(failure))) return;
          continue;
        }
        if (this.stopping) {
          await engine.stop();
          return;
        }
        const outcome = await this.serve(engine, cpuInference);
        if (outcome.kind === 'reload') continue;
        if (outcome.kind === 'poller-failed') throw outcome.error;
        if (outcome.kind === 'stop') return;
        if (!(await this.fail(outcome.failure, true))) return;
      }
    } finally {
      if (machine.state !== 'stopped') machine.transition('stopped');
    }
  }

  private async serve(engine: LaunchedEngine, cpuInference: boolean): Promise<ServingOutcome | { readonly kind: 'reload' }> {
    const { logger, policy } = this.options;
    this.engine = engine;
    this.lastEngine = engine;
    const details = {
      engineVersion: engine.properties.engineVersion,
      modelDigest: engine.modelDigest,
      mockEngine: engine.mockEngine,
      cpuInferenceOverride: cpuInference,
      slotsTotal: engine.properties.totalSlots,
      modelRef: engine.modelRef,
      // ORCH-3007: the quant is part of the replica-set key; the model file says it when the config does not.
      quant: describeQuant(this.options.declaredQuant, engine.properties.modelPath),
    };
    policy.recordReady(this.now());
    logger.info(
      { engine_version: engine.properties.engineVersion, model_digest: engine.modelDigest, slots: engine.properties.totalSlots, cpu_inference_override: cpuInference, drained: this.drained },
      this.drained ? 'pool replica up, drained (not polling)' : 'pool replica ready',
    );
    for (;;) {
      const outcome = this.drained ? await this.serveDrained(engine, details) : await this.servePolling(engine, details);
      if (outcome.kind === 'control') continue;
      this.engine = undefined;
      return outcome;
    }
  }

  /** Ready: polls until stopped, crashed, or drained; a crash or stop drains it first. */
  private async servePolling(engine: LaunchedEngine, details: TransitionDetails): Promise<ServingPhaseOutcome> {
    const { machine, poller, logger } = this.options;
    const gate = this.options.poolQueueGate;
    const admitted = await gate?.decide(engine, false);
    if (admitted?.kind === 'refuse') {
      // Never Ready beside another replica set it must not mix with: Unready with the reason, retried with backoff.
      machine.transition('unready', { error: admitted.failure.toReplicaError(this.now()) });
      await engine.stop();
      return { kind: 'crash', failure: admitted.failure };
    }
    let pollPoolQueue = admitted?.kind !== 'standby';
    if (admitted?.kind === 'standby') {
      logger.warn({ served_by: admitted.servedBy }, 'standby: another replica set serves the pool queue; this replica takes placed tasks on its lane only (ORCH-3046)');
    }
    machine.transition('ready', { ...details, poolQueueStandby: !pollPoolQueue });
    let outcome: ServingPhaseOutcome | { readonly kind: 'membership'; readonly verdict: MembershipVerdict };
    for (;;) {
      const { failed: pollerFailed } = await poller.start(engine, pollPoolQueue);
      this.notifySettled();
      const watching = new AbortController();
      outcome = await Promise.race<ServingPhaseOutcome | { readonly kind: 'membership'; readonly verdict: MembershipVerdict }>([
        this.stopRequested,
        engine.failed.then((failure) => ({ kind: 'crash', failure })),
        pollerFailed.then((error) => ({ kind: 'poller-failed', error })),
        this.nextControl('drain'),
        ...(gate ? [gate.watch(engine, pollPoolQueue, watching.signal).then((verdict) => (verdict ? { kind: 'membership' as const, verdict } : new Promise<never>(() => undefined)))] : []),
      ]);
      watching.abort();
      if (outcome.kind !== 'membership' || outcome.verdict.kind !== 'poll') break;
      // The set that served the pool queue is gone: this standby takes it over (its lane restarts with it).
      logger.info('the pool queue has no other replica set now: polling it (ORCH-3046)');
      await poller.stop();
      pollPoolQueue = true;
      machine.leavePoolQueueStandby();
    }
    if (outcome.kind === 'membership') {
      // Two sets joined the pool queue at once and this one is outranked: it leaves, and comes back as a standby.
      outcome = { kind: 'crash', failure: outcome.verdict.kind === 'refuse' ? outcome.verdict.failure : asReplicaFailure(new Error('pool queue membership lost'), 'replica_set_mismatch') };
    }
    this.controlRequest = undefined;
    if (outcome.kind === 'control' && outcome.request.kind === 'drain') {
      machine.transition('draining');
      logger.info({ deadline_ms: outcome.request.deadlineMs }, 'draining: polling stopped, in-flight tasks finish until the deadline');
      const { aborted } = await poller.drain(outcome.request.deadlineMs);
      this.lastDrainAborted = aborted;
      if (aborted > 0) logger.warn({ aborted }, 'drain deadline passed: in-flight tasks aborted with POOL_UNAVAILABLE');
      return outcome;
    }
    // Drain: no new tasks; in-flight ones finish, or fail over to another replica if the engine is gone.
    machine.transition('draining', outcome.kind === 'crash' ? { error: outcome.failure.toReplicaError(this.now()) } : {});
    if (outcome.kind === 'crash') logger.error({ cause: outcome.failure.kind, err: outcome.failure }, 'engine failed; draining the replica');
    await poller.stop();
    await engine.stop();
    return outcome;
  }

  /** Drained: the engine stays up, nothing polls, until resumed, stopped or crashed. */
  private async serveDrained(engine: LaunchedEngine, details: TransitionDetails): Promise<ServingPhaseOutcome> {
    const { machine, logger } = this.options;
    machine.transition('drained', details);
    const pending = this.reloading;
    if (pending && engine.modelRef === this.modelRef) {
      if (pending.failure) logger.warn({ model_ref: engine.modelRef }, 'reload rolled back: the engine serves the previous model again (drained until resumed)');
      else logger.info({ model_ref: engine.modelRef }, 'reloaded: the engine serves the new model (drained until resumed)');
      this.settleReload(pending.failure);
    }
    this.notifySettled();
    const outcome = await Promise.race<ServingPhaseOutcome>([
      this.stopRequested,
      engine.failed.then((failure) => ({ kind: 'crash', failure })),
      this.nextControl('resume'),
      this.nextControl('reload', engine),
    ]);
    this.controlRequest = undefined;
    if (outcome.kind === 'control' && outcome.request.kind === 'reload') {
      logger.info({ model_ref: this.modelRef, previous_model_ref: engine.modelRef }, 'reloading: stopping the engine to start it on another model');
      await engine.stop();
      return { kind: 'reload' };
    }
    if (outcome.kind === 'control') {
      logger.info('resumed: polling the pool queue again');
      return outcome;
    }
    if (outcome.kind === 'crash') {
      machine.transition('unready', { error: outcome.failure.toReplicaError(this.now()) });
      logger.error({ cause: outcome.failure.kind, err: outcome.failure }, 'engine failed while drained');
    }
    await engine.stop();
    return outcome;
  }

  /**
   * Resolves with the next control request of this kind — at once when one came while the phase was being
   * set up (the `drained` flag is the source of truth, the callback only wakes the phase).
   */
  private nextControl(kind: ControlRequest['kind'], engine?: LaunchedEngine): Promise<ServingPhaseOutcome> {
    if (kind === 'drain' && this.drained) return Promise.resolve({ kind: 'control', request: { kind, deadlineMs: this.drainDeadlineMs } });
    if (kind === 'resume' && !this.drained) return Promise.resolve({ kind: 'control', request: { kind } });
    if (kind === 'reload' && engine !== undefined && this.modelRef !== engine.modelRef) return Promise.resolve({ kind: 'control', request: { kind } });
    return new Promise((resolve) => {
      const previous = this.controlRequest;
      // Two phases may listen at once (drained waits for resume and reload): chain them.
      this.controlRequest = (request) => {
        previous?.(request);
        if (request.kind === kind) resolve({ kind: 'control', request });
      };
    });
  }

  /**
   * Records a failure, goes Unready and waits out the restart policy's delay. Returns false when the
   * replica should not restart (stopped, or a failure that waiting cannot fix).
   */
  private async fail(failure: ReplicaFailure, alreadyDrained = false): Promise<boolean> {
    const { machine, policy, logger } = this.options;
    this.options.events?.record(failure.kind);
    if (machine.state !== 'unready') machine.transition('unready', alreadyDrained ? {} : { error: failure.toReplicaError(this.now()) });
    this.notifySettled();
    logger.error({ code: failure.code, cause: failure.kind, err: failure }, 'replica unready');
    if (!failure.retriable) {
      await this.stopRequested;
      return false;
    }
    const decision = policy.recordFailure(this.now());
    const nextAttemptAtMs = this.now() + decision.delayMs;
    if (decision.action === 'breaker-open') {
      machine.transition('breaker_open', { nextAttemptAtMs });
      logger.error({ cooldown_ms: decision.delayMs }, 'restart storm: circuit breaker open (OC-POOL-3011)');
      if (!(await this.wait(decision.delayMs))) return false;
      machine.transition('restarting', { restart: true });
    } else {
      machine.transition('restarting', { restart: true, nextAttemptAtMs });
      logger.warn({ backoff_ms: decision.delayMs }, 'restarting the engine after backoff');
      if (!(await this.wait(decision.delayMs))) return false;
    }
    return !this.stopping;
  }

  /** Sleeps unless stopped first; false when stopped. */
  private async wait(delayMs: number): Promise<boolean> {
    try {
      await sleep(delayMs, undefined, { signal: this.stopController.signal });
      return true;
    } catch {
      return false;
    }
  }
}
