import type { ModelCatalogEntry, PoolConfig } from './config';

/**
 * A pool's desired state (design §5, .specs/decisions/0007-pool-state-and-operations.md): what the
 * operator asked for — serving or drained, which model — and the operation in progress. It lives in one
 * Temporal workflow per pool (workflows/pool-state-workflow.ts) so every orchestrator process, restarted
 * or not, reads the same answer: pool workers come up drained from it, gateways refuse admission and
 * route model refs by it.
 */
export const POOL_MODES = ['serving', 'draining', 'drained', 'reloading'] as const;
export type PoolMode = (typeof POOL_MODES)[number];

export const POOL_OPERATION_KINDS = ['drain', 'resume', 'reload'] as const;
export type PoolOperationKind = (typeof POOL_OPERATION_KINDS)[number];

export const POOL_OPERATION_OUTCOMES = ['completed', 'rolled_back', 'failed'] as const;
export type PoolOperationOutcome = (typeof POOL_OPERATION_OUTCOMES)[number];

export interface PoolOperationRef {
  /** The operation's workflow id: find it in the Web UI. */
  readonly id: string;
  readonly kind: PoolOperationKind;
  /** ISO-8601. */
  readonly started_at: string;
  /** A reload's progress (ORCH-3033): its strategy, phase and steps so far; kept in `last_operation` when it ends. */
  readonly reload?: ReloadProgress | undefined;
}

/**
 * How a reload moves the replicas (ORCH-3033): `canary` switches ONE replica first — drained while the
 * others keep serving the old model — checks it, then reloads the rest; `all_at_once` drains and reloads
 * every replica together. A canary that fails is the only replica rolled back.
 */
export const RELOAD_STRATEGIES = ['canary', 'all_at_once'] as const;
export type ReloadStrategy = (typeof RELOAD_STRATEGIES)[number];

/**
 * A reload's phases, in the order a canary reload goes through them:
 * - `canary`: one replica drains and loads the new model (checksum, headroom, self-test); the pool serves.
 * - `canary_observing`: the canary is up on the new model, drained, and checked again (Ready, self-test)
 *   until the observation period ends; the pool serves.
 * - `rolling_out`: the pool is drained (admission closed) and the other replicas load the new model; an
 *   all-at-once reload starts here with every replica.
 * - `switched`: every running replica serves the new model; the pool's model is switched and they resume.
 * - `rolling_back`: something failed; the replicas that had switched go back to the previous model.
 */
export const RELOAD_PHASES = ['canary', 'canary_observing', 'rolling_out', 'switched', 'rolling_back'] as const;
export type ReloadPhase = (typeof RELOAD_PHASES)[number];

export interface ReloadStep {
  readonly phase: ReloadPhase;
  /** The replicas the phase acts on. */
  readonly replica_ids: readonly string[];
  /** The model they go to in this phase (the previous one when rolling back). */
  readonly model_ref: string;
  /** ISO-8601, when the phase began (workflow time). */
  readonly at: string;
}

export interface ReloadProgress {
  readonly strategy: ReloadStrategy;
  readonly phase: ReloadPhase;
  /** The replica that loads the new model first; null for an all-at-once reload or before one is chosen. */
  readonly canary_replica_id: string | null;
  /** How long the canary is watched on the new model before the rest follow (0: once it passed its self-test). */
  readonly canary_observe_ms: number;
  /** Every phase so far, in order. */
  readonly steps: readonly ReloadStep[];
}

/** The strategy a reload runs with: a canary needs a second replica to keep serving meanwhile. */
export function effectiveReloadStrategy(requested: ReloadStrategy, replicaCount: number): ReloadStrategy {
  return requested === 'canary' && replicaCount > 1 ? 'canary' : 'all_at_once';
}

/** The mode a reload claims the pool with: a canary keeps it serving (admission open) until the rollout. */
export function reloadClaimMode(strategy: ReloadStrategy): PoolMode {
  return strategy === 'canary' ? 'serving' : 'reloading';
}

export interface PoolOperationRecord extends PoolOperationRef {
  readonly outcome: PoolOperationOutcome;
  /** Why a reload rolled back or an operation failed; null when it completed. */
  readonly cause: string | null;
  readonly finished_at: string;
}

export interface PoolState {
  readonly version: 1;
  readonly pool_id: string;
  readonly mode: PoolMode;
  /** The model the pool serves; null means the config's `model` (no reload happened). */
  readonly model_ref: string | null;
  /** What the pool served before the last successful reload: reloading back to it is the manual rollback. */
  readonly previous_model_ref: string | null;
  readonly operation: PoolOperationRef | null;
  readonly last_operation: PoolOperationRecord | null;
  readonly updated_at: string;
}

/** The longest drain deadline accepted: the pool replica's Worker keeps its in-flight tasks this long at most. */
export const MAX_DRAIN_DEADLINE_MS = 3_600_000;

/** Modes in which the gateway refuses new tasks before enqueue (503 POOL_UNAVAILABLE). */
export function poolRefusesAdmission(mode: PoolMode): boolean {
  return mode !== 'serving';
}

/** Modes in which a replica that starts must not poll: it comes up drained. */
export function replicaStartsDrained(mode: PoolMode): boolean {
  return mode !== 'serving';
}

/** Model refs the mock runtime serves: any `mock:<name>` (a test double has no file to verify). */
export function isMockModelRef(ref: string): boolean {
  return ref.startsWith('mock:');
}

/**
 * Why a pool cannot reload to `ref`, or null when it can (ORCH-2102): a llama-server (or triton-server) pool loads catalog
 * models only, the mock runtime `mock:` refs, and an external engine is not ours to reload.
 */
export function reloadRefusal(pool: PoolConfig, models: readonly ModelCatalogEntry[], ref: string, current: string): string | null {
  if (ref === current) return `pool ${pool.id} already serves ${ref}`;
  switch (pool.engine_runtime.kind) {
    case 'llama-server':
    case 'triton-server':
    case 'vllm':
      return models.some((entry) => entry.ref === ref) ? null : `model "${ref}" is not in the config's models catalog`;
    case 'mock':
      return isMockModelRef(ref) ? null : `the mock runtime serves mock:<name> refs only, not "${ref}"`;
    case 'external':
      return `pool ${pool.id} runs an external engine; llama-orch cannot load another model into it`;
  }
}

export function initialPoolState(poolId: string, at: string): PoolState {
  return { version: 1, pool_id: poolId, mode: 'serving', model_ref: null, previous_model_ref: null, operation: null, last_operation: null, updated_at: at };
}

export interface BeginPoolOperation {
  readonly operation: PoolOperationRef;
  /** The mode the pool enters at once (a drain refuses admission from this moment on). */
  readonly mode: PoolMode;
}

/** Either the operation is now the pool's, or another one runs (one operation per pool at a time). */
export type BeginPoolOperationResult =
  | { readonly accepted: true; readonly state: PoolState }
  | { readonly accepted: false; readonly running: PoolOperationRef };

export interface PoolOperationProgress {
  readonly id: string;
  readonly mode: PoolMode;
  /**
   * The atomic switch of a reload (ORCH-3031): set once every replica serves the new model; gateways route
   * this ref to the pool from then on, and `previous_model_ref` becomes the manual rollback target.
   */
  readonly switchModel?: { readonly modelRef: string; readonly previousModelRef: string } | undefined;
  /** A reload's progress so far (replaces the running operation's `reload`). */
  readonly reload?: ReloadProgress | undefined;
}

export interface FinishPoolOperation {
  readonly id: string;
  readonly outcome: PoolOperationOutcome;
  readonly cause: string | null;
  readonly mode: PoolMode;
}

/** Temporal names (workflows/pool-state-workflow.ts, workflows/pool-operations.ts). */
export const POOL_STATE_WORKFLOW_TYPE = 'poolStateWorkflow';
export const POOL_STATE_QUERY = 'poolState';
export const BEGIN_POOL_OPERATION_UPDATE = 'beginPoolOperation';
export const POOL_OPERATION_PROGRESS_SIGNAL = 'poolOperationProgress';
export const FINISH_POOL_OPERATION_SIGNAL = 'finishPoolOperation';
export const DRAIN_POOL_WORKFLOW_TYPE = 'drainPoolWorkflow';
export const RESUME_POOL_WORKFLOW_TYPE = 'resumePoolWorkflow';
export const RELOAD_POOL_WORKFLOW_TYPE = 'reloadPoolWorkflow';
/** The reload workflow's progress query (the Web UI's Queries tab); the same object as health's `operation.reload`. */
export const RELOAD_PROGRESS_QUERY = 'reloadProgress';

export function poolStateWorkflowId(poolId: string): string {
  return `pool-state-${poolId}`;
}

export function poolOperationWorkflowId(poolId: string, kind: PoolOperationKind, unique: string): string {
  return `pool-${kind}-${poolId}-${unique}`;
}

export interface PoolOperationInput {
  readonly version: 1;
  readonly poolId: string;
  readonly operationId: string;
  /** Every replica to act on: the configured ones and any others seen (extra hosts). */
  readonly replicaIds: readonly string[];
}

export interface DrainPoolInput extends PoolOperationInput {
  readonly deadlineMs: number;
}

export interface ReloadPoolInput extends PoolOperationInput {
  readonly modelRef: string;
  /** What the pool serves now: the rollback target. */
  readonly previousModelRef: string;
  readonly drainDeadlineMs: number;
  /** How long one replica's engine may take to come up on the new model. */
  readonly loadTimeoutMs: number;
  /** ORCH-3033; absent in reloads started before canaries existed (they ran all at once). */
  readonly strategy?: ReloadStrategy | undefined;
  /** How long the canary is watched on the new model before the rest follow. */
  readonly canaryObserveMs?: number | undefined;
}

export interface PoolOperationResult {
  readonly outcome: PoolOperationOutcome;
  readonly cause: string | null;
  /** Per replica: what it did, or `absent` when no process served its control queue. */
  readonly replicas: Readonly<Record<string, string>>;
}

/** What a replica's control activities return (gpu-workers/pool-manager/replica-control.ts). */
export interface ReplicaControlResult {
  readonly replicaId: string;
  readonly state: string;
  readonly modelRef: string;
  /** Tasks still running when the drain deadline passed, aborted with POOL_UNAVAILABLE. */
  readonly aborted?: number | undefined;
}

/** The activities every replica serves on its control queue (core/task-queues.ts replicaControlTaskQueue). */
export interface ReplicaControlActivities {
  drainReplica(input: { readonly deadlineMs: number }): Promise<ReplicaControlResult>;
  resumeReplica(): Promise<ReplicaControlResult>;
  reloadReplica(input: { readonly modelRef: string }): Promise<ReplicaControlResult>;
  /**
   * ORCH-3033: a canary's check — the replica is up and drained on `modelRef` and its engine passes the
   * self-test again (a health check where the runtime has no self-test); fails with the cause otherwise.
   */
  checkReplica(input: { readonly modelRef: string }): Promise<ReplicaControlResult>;
}
