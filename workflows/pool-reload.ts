import { defineQuery, log, patched, setCurrentDetails, setHandler, sleep } from '@temporalio/workflow';
import { RELOAD_PROGRESS_QUERY } from '../core/pool-state';
import type { PoolMode, PoolOperationResult, ReloadPhase, ReloadPoolInput, ReloadProgress } from '../core/pool-state';
import { DRAIN_MARGIN_MS, finish, firstError, onEveryReplica, reportProgress, RESUME_TIMEOUT_MS, summarize } from './pool-operations';
import type { ReplicaOutcome } from './pool-operations';

/** ORCH-3033: reloads started from here on run in phases (canary first); older histories replay the all-at-once code. */
export const CANARY_RELOAD_PATCH = 'orch-3033-canary-reload';
/** A canary under observation is checked this often, and once more when the period ends. */
const CANARY_CHECK_EVERY_MS = 5_000;
/** One check: a self-test on an idle engine. */
const CANARY_CHECK_TIMEOUT_MS = 60_000;

export const reloadProgressQuery = defineQuery<ReloadProgress | null>(RELOAD_PROGRESS_QUERY);

/**
 * ORCH-2102 / OC-CTRL-2003 / ORCH-3031 / ORCH-3033: drain + replace, atomic, rolled back on failure.
 *
 * Canary (the default for a pool with more than one replica): ONE replica drains and loads the new model
 * (checksum, headroom, self-test) while the others keep serving the old one — the pool stays `serving` — and
 * is checked again for `canaryObserveMs`. If it fails at any step only the canary goes back; the rest never
 * stopped. Then the pool drains (`reloading`) and the rest load the new model. All at once: every replica
 * drains and loads together. Either way the pool's model is switched in ONE signal once every running replica
 * serves the new model, then they resume; if a replica of the rollout fails, every replica that switched goes
 * back to the previous model in one action and the result is `rolled_back` with the cause.
 */
export async function reloadPoolWorkflow(input: ReloadPoolInput): Promise<PoolOperationResult> {
  if (!patched(CANARY_RELOAD_PATCH)) return reloadAllAtOnceBeforeCanaries(input);
  return new PhasedReload(input).run();
}

class PhasedReload {
  private progress: ReloadProgress;
  /** Every control outcome in order; the summary keeps each replica's last. */
  private readonly outcomes: ReplicaOutcome[] = [];
  /** The canary serves the new model: a failure after this sends it back (before, it went back by itself). */
  private canaryLoaded = false;

  constructor(private readonly input: ReloadPoolInput) {
    const strategy = input.strategy ?? 'all_at_once';
    this.progress = { strategy, phase: strategy === 'canary' ? 'canary' : 'rolling_out', canary_replica_id: null, canary_observe_ms: input.canaryObserveMs ?? 0, steps: [] };
    setHandler(reloadProgressQuery, () => this.progress);
  }

  async run(): Promise<PoolOperationResult> {
    const { input } = this;
    let canary: string | null = null;
    if (this.progress.strategy === 'canary') {
      // The first replica that is running; one that is not comes up on the pool's (old) model when it starts.
      for (const candidate of input.replicaIds) {
        await this.enter('canary', [candidate], input.modelRef, 'serving', candidate);
        const drained = await this.act([candidate], input.drainDeadlineMs + DRAIN_MARGIN_MS, (replica) => replica.drainReplica({ deadlineMs: input.drainDeadlineMs }));
        if (present(drained).length === 0 && firstError(drained) === null) continue;
        canary = candidate;
        const cause = firstError(drained) ?? (await this.loadAndObserveCanary(candidate));
        // Only the canary goes back (it did so by itself if its model failed to load); the others never stopped.
        if (cause !== null) return this.rollBack(`canary ${cause}`, { restore: this.canaryLoaded ? [candidate] : [], involved: [candidate], resume: [candidate], mode: 'serving' });
        break;
      }
    }

    const rest = input.replicaIds.filter((replicaId) => replicaId !== canary);
    await this.enter('rolling_out', rest, input.modelRef, 'reloading');
    const drained = await this.act(rest, input.drainDeadlineMs + DRAIN_MARGIN_MS, (replica) => replica.drainReplica({ deadlineMs: input.drainDeadlineMs }));
    const switched = canary === null ? [] : [canary];
    let cause = firstError(drained);
    if (cause === null && canary === null && present(drained).length === 0) cause = 'no replica of the pool is running: nothing could load the new model';
    let failed: string[] = [];
    if (cause === null) {
      const reloaded = await this.act(present(drained), input.loadTimeoutMs, (replica) => replica.reloadReplica({ modelRef: input.modelRef }));
      switched.push(...present(reloaded));
      failed = reloaded.flatMap((outcome) => ('error' in outcome ? [outcome.replicaId] : []));
      cause = firstError(reloaded);
    }
    // Rollback in one action: every replica that switched goes back; the failed ones already did.
    if (cause !== null) return this.rollBack(cause, { restore: switched, involved: [...switched, ...failed], resume: input.replicaIds, mode: 'reloading' });

    await this.enter('switched', switched, input.modelRef, 'reloading', undefined, { modelRef: input.modelRef, previousModelRef: input.previousModelRef });
    const resumed = await onEveryReplica(input.replicaIds, RESUME_TIMEOUT_MS, (replica) => replica.resumeReplica());
    const resumeError = firstError(resumed);
    await finish(input, { outcome: 'completed', cause: resumeError, mode: 'serving' });
    return { outcome: 'completed', cause: resumeError, replicas: summarize(this.outcomes) };
  }

  /** Loads the new model on the canary, then watches it; the cause of its failure, or null. */
  private async loadAndObserveCanary(canary: string): Promise<string | null> {
    const { input } = this;
    const reloaded = await this.act([canary], input.loadTimeoutMs, (replica) => replica.reloadReplica({ modelRef: input.modelRef }));
    const loadError = firstError(reloaded) ?? (present(reloaded).length === 0 ? `${canary}: stopped before it loaded the new model` : null);
    if (loadError !== null) return loadError;
    this.canaryLoaded = true;
    const observeMs = this.progress.canary_observe_ms;
    if (observeMs <= 0) return null;
    await this.enter('canary_observing', [canary], input.modelRef, 'serving');
    const endsAt = Date.now() + observeMs;
    for (;;) {
      const left = endsAt - Date.now();
      if (left > 0) await sleep(Math.min(CANARY_CHECK_EVERY_MS, left));
      const checked = await this.act([canary], CANARY_CHECK_TIMEOUT_MS, (replica) => replica.checkReplica({ modelRef: input.modelRef }));
      const checkError = firstError(checked) ?? (present(checked).length === 0 ? `${canary}: not running (its control task was not picked up)` : null);
      if (checkError !== null) return checkError;
      if (Date.now() >= endsAt) return null;
    }
  }

  private async rollBack(
    cause: string,
    scope: { readonly restore: readonly string[]; readonly involved: readonly string[]; readonly resume: readonly string[]; readonly mode: PoolMode },
  ): Promise<PoolOperationResult> {
    const { input } = this;
    await this.enter('rolling_back', scope.involved, input.previousModelRef, scope.mode);
    const restored = await this.act(scope.restore, input.loadTimeoutMs, (replica) => replica.reloadReplica({ modelRef: input.previousModelRef }));
    const restoreError = firstError(restored);
    await onEveryReplica(scope.resume, RESUME_TIMEOUT_MS, (replica) => replica.resumeReplica());
    const fullCause = restoreError === null ? cause : `${cause}; rollback: ${restoreError}`;
    const outcome = restoreError === null ? 'rolled_back' : 'failed';
    log.warn('reload rolled back', { poolId: input.poolId, cause: fullCause });
    await finish(input, { outcome, cause: fullCause, mode: 'serving' });
    return { outcome, cause: fullCause, replicas: summarize(this.outcomes) };
  }

  private async act(...args: Parameters<typeof onEveryReplica>): Promise<ReplicaOutcome[]> {
    const outcomes = args[0].length === 0 ? [] : await onEveryReplica(...args);
    this.outcomes.push(...outcomes);
    return outcomes;
  }

  /** One phase begins: the pool-state record (health's `operation.reload`), the query and the Web UI hear it in one signal. */
  private async enter(
    phase: ReloadPhase,
    replicaIds: readonly string[],
    modelRef: string,
    mode: PoolMode,
    canary?: string,
    switchModel?: { readonly modelRef: string; readonly previousModelRef: string },
  ): Promise<void> {
    const step = { phase, replica_ids: replicaIds, model_ref: modelRef, at: new Date().toISOString() };
    this.progress = { ...this.progress, phase, ...(canary === undefined ? {} : { canary_replica_id: canary }), steps: [...this.progress.steps, step] };
    setCurrentDetails(describeProgress(this.progress, this.input));
    await reportProgress(this.input, { mode, reload: this.progress, ...(switchModel ? { switchModel } : {}) });
  }
}

function present(outcomes: readonly ReplicaOutcome[]): string[] {
  return outcomes.flatMap((outcome) => ('result' in outcome && outcome.result !== 'absent' ? [outcome.replicaId] : []));
}

/** The Web UI's "current details" of the reload workflow: its phase and steps, newest last. */
function describeProgress(progress: ReloadProgress, input: ReloadPoolInput): string {
  const steps = progress.steps.map((step) => `- ${step.at} **${step.phase}**: ${step.replica_ids.join(', ') || '(none)'} → ${step.model_ref}`);
  return [`Reload of pool ${input.poolId} to ${input.modelRef} (${progress.strategy}): **${progress.phase}**`, ...steps].join('\n');
}

/**
 * The reload as it ran before ORCH-3033 (histories without the patch marker replay it): drain + replace. Drains
 * the pool, restarts every replica's engine on the new model (same launch path: checksum, headroom,
 * self-test), and only if every replica came up on it switches the pool's model in ONE signal to the
 * pool-state workflow, then resumes. If any replica fails, the replicas already on the new model go back to
 * the previous one (the failed ones did so by themselves), the pool resumes on the old model, and the result
 * is `rolled_back` with the cause.
 */
async function reloadAllAtOnceBeforeCanaries(input: ReloadPoolInput): Promise<PoolOperationResult> {
  const drained = await onEveryReplica(input.replicaIds, input.drainDeadlineMs + DRAIN_MARGIN_MS, (replica) => replica.drainReplica({ deadlineMs: input.drainDeadlineMs }));
  const present = drained.flatMap((outcome) => ('result' in outcome && outcome.result !== 'absent' ? [outcome.replicaId] : []));
  let cause = firstError(drained);
  let reloaded: ReplicaOutcome[] = [];
  if (cause === null && present.length === 0) cause = 'no replica of the pool is running: nothing could load the new model';
  if (cause === null) {
    reloaded = await onEveryReplica(present, input.loadTimeoutMs, (replica) => replica.reloadReplica({ modelRef: input.modelRef }));
    cause = firstError(reloaded);
  }
  if (cause === null) {
    await reportProgress(input, { mode: 'reloading', switchModel: { modelRef: input.modelRef, previousModelRef: input.previousModelRef } });
    const resumed = await onEveryReplica(input.replicaIds, RESUME_TIMEOUT_MS, (replica) => replica.resumeReplica());
    const resumeError = firstError(resumed);
    await finish(input, { outcome: 'completed', cause: resumeError, mode: 'serving' });
    return { outcome: 'completed', cause: resumeError, replicas: summarize(reloaded) };
  }
  // Rollback in one action: every replica that switched goes back; the failed ones already did.
  const switched = reloaded.flatMap((outcome) => ('result' in outcome && outcome.result !== 'absent' ? [outcome.replicaId] : []));
  const restored = await onEveryReplica(switched, input.loadTimeoutMs, (replica) => replica.reloadReplica({ modelRef: input.previousModelRef }));
  const restoreError = firstError(restored);
  await onEveryReplica(input.replicaIds, RESUME_TIMEOUT_MS, (replica) => replica.resumeReplica());
  const fullCause = restoreError === null ? cause : `${cause}; rollback: ${restoreError}`;
  log.warn('reload rolled back', { poolId: input.poolId, cause: fullCause });
  await finish(input, { outcome: restoreError === null ? 'rolled_back' : 'failed', cause: fullCause, mode: 'serving' });
  return { outcome: restoreError === null ? 'rolled_back' : 'failed', cause: fullCause, replicas: summarize([...reloaded, ...restored]) };
}
