import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { EngineLauncher, LaunchedEngine } from './engine-launcher';
import type { QueuePoller } from './queue-poller';
import { asReplicaFailure } from './replica-failure';
import type { ReplicaFailure } from './replica-failure';
import type { ReplicaEventCounters } from './replica-events';
import type { ReplicaStateMachine } from './replica-state';
import type { RestartPolicy } from './restart-policy';

export interface ReplicaSupervisorOptions {
  readonly machine: ReplicaStateMachine;
  readonly launcher: EngineLauncher;
  readonly policy: RestartPolicy;
  readonly poller: Pick<QueuePoller, 'start' | 'stop'>;
  readonly logger: Logger;
  readonly now?: () => number;
  readonly events?: ReplicaEventCounters | undefined;
}

type ServingOutcome = { readonly kind: 'stop' } | { readonly kind: 'crash'; readonly failure: ReplicaFailure } | { readonly kind: 'poller-failed'; readonly error: Error };

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

  constructor(private readonly options: ReplicaSupervisorOptions) {
    this.now = options.now ?? Date.now;
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
      if (cpuInference) {
        logger.warn(
          'DEVELOPMENT OVERRIDE (ORCH-1101): no usable NVIDIA GPU, inference runs on the CPU because dev.allow_cpu_inference / ORCH_DEV_ALLOW_CPU_INFERENCE is set — never in production',
        );
      }
      while (!this.stopping) {
        let engine: LaunchedEngine;
        try {
          engine = await launcher.launch({ enter: (phase) => machine.transition(phase, { cpuInferenceOverride: cpuInference }) });
        } catch (error) {
          if (this.stopping) return;
          if (!(await this.fail(asReplicaFailure(error)))) return;
          continue;
        }
        if (this.stopping) {
          await engine.stop();
          return;
        }
        const outcome = await this.serve(engine, cpuInference);
        if (outcome.kind === 'poller-failed') throw outcome.error;
        if (outcome.kind === 'stop') return;
        if (!(await this.fail(outcome.failure, true))) return;
      }
    } finally {
      if (machine.state !== 'stopped') machine.transition('stopped');
    }
  }

  private async serve(engine: LaunchedEngine, cpuInference: boolean): Promise<ServingOutcome> {
    const { machine, poller, logger, policy } = this.options;
    this.engine = engine;
    this.lastEngine = engine;
    machine.transition('ready', { engineVersion: engine.properties.engineVersion, modelDigest: engine.modelDigest, cpuInferenceOverride: cpuInference, slotsTotal: engine.properties.totalSlots });
    policy.recordReady(this.now());
    const { failed: pollerFailed } = await poller.start(engine);
    logger.info(
      { engine_version: engine.properties.engineVersion, model_digest: engine.modelDigest, slots: engine.properties.totalSlots, cpu_inference_override: cpuInference },
      'pool replica ready and polling',
    );
    const outcome = await Promise.race<ServingOutcome>([
      this.stopRequested,
      engine.failed.then((failure) => ({ kind: 'crash', failure })),
      pollerFailed.then((error) => ({ kind: 'poller-failed', error })),
    ]);
    // Drain: no new tasks; in-flight ones finish, or fail over to another replica if the engine is gone.
    machine.transition('draining', outcome.kind === 'crash' ? { error: outcome.failure.toReplicaError(this.now()) } : {});
    if (outcome.kind === 'crash') logger.error({ cause: outcome.failure.kind, err: outcome.failure }, 'engine failed; draining the replica');
    await poller.stop();
    await engine.stop();
    this.engine = undefined;
    return outcome;
  }

  /**
   * Records a failure, goes Unready and waits out the restart policy's delay. Returns false when the
   * replica should not restart (stopped, or a failure that waiting cannot fix).
   */
  private async fail(failure: ReplicaFailure, alreadyDrained = false): Promise<boolean> {
    const { machine, policy, logger } = this.options;
    this.options.events?.record(failure.kind);
    machine.transition('unready', alreadyDrained ? {} : { error: failure.toReplicaError(this.now()) });
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
