import type { ErrorCode } from './errors';

/**
 * A pool replica's lifecycle state (design §4, docs/pool-lifecycle.md). Only `ready` polls the
 * pool's task queue.
 */
export const REPLICA_STATES = [
  'starting',
  'verifying',
  'loading',
  'self_test',
  'ready',
  'draining',
  /** Engine live, not polling: an operator drained the pool (design §5); resume or reload leaves it. */
  'drained',
  'unready',
  'restarting',
  'breaker_open',
  'stopped',
] as const;
export type ReplicaState = (typeof REPLICA_STATES)[number];

/**
 * Why a replica is not serving, finer than the error code: ORCH-3039/3053 want VRAM OOM, host OOM,
 * driver resets and ECC errors told apart.
 */
export const REPLICA_FAILURE_KINDS = [
  'untrusted_artifact',
  'no_gpu',
  /** The pool's device mask names a GPU this host does not have (ORCH-1101, ORCH-3011). */
  'device_mask_invalid',
  'insufficient_host_ram',
  'insufficient_vram',
  'vram_oom',
  'host_oom',
  'driver_reset',
  'ecc_error',
  'engine_exit',
  'load_timeout',
  'self_test_failed',
  'config_mismatch',
  /**
   * ORCH-3046 / OC-CORE-1031: another replica set (another engine_version under
   * `require_same_engine_version`, or a set that outranks this one) serves the pool's queue.
   */
  'replica_set_mismatch',
] as const;
export type ReplicaFailureKind = (typeof REPLICA_FAILURE_KINDS)[number];

/** How an engine launch (preload) ended: Ready, or the failure kind (OC-POOL-3030, ORCH-3028). */
export type LaunchOutcome = 'ready' | ReplicaFailureKind;

export interface ReplicaError {
  readonly code: ErrorCode;
  readonly kind: ReplicaFailureKind;
  readonly message: string;
  /** ISO-8601. */
  readonly at: string;
}

/** What a replica reports on every state change (signal `replicaStatus`), and health shows. */
export interface ReplicaStatus {
  readonly version: 1;
  readonly pool_id: string;
  readonly replica_id: string;
  readonly host: string;
  readonly state: ReplicaState;
  /** The engine process is up (it may still be loading). */
  readonly live: boolean;
  readonly ready: boolean;
  readonly draining: boolean;
  /** ORCH-3032: llama-server's build_info, once known. */
  readonly engine_version: string | null;
  /** ORCH-3032: `sha256:<hex>` of the verified model file. */
  readonly model_digest: string | null;
  readonly last_error: ReplicaError | null;
  /** Engine (re)starts after a failure, since the process started (OC-POOL-3030). */
  readonly restarts: number;
  readonly breaker_open: boolean;
  /** When the next start attempt is due, while restarting or while the breaker is open. */
  readonly next_attempt_at: string | null;
  /** ORCH-1101's development override is in effect: inference runs on the CPU. */
  readonly cpu_inference_override: boolean;
  readonly mock_engine: boolean;
  /** What the replica serves: the fields of its replica-set key (ORCH-3007). */
  readonly engine: string;
  readonly model_ref: string;
  readonly quant: string | null;
  readonly ctx: number;
  readonly sampler_profile_version: string;
  /** core/replica-set.ts; null until the engine's version is known. */
  readonly replica_set_key: string | null;
  /** ORCH-3019: the engine's slots and how many run a task (load changes are published at most once a second). */
  readonly slots_total: number;
  readonly slots_busy: number;
  /**
   * Issue 13 (policies see real load): tokens the engine's slots hold in KV over their context, per mille —
   * running tasks and what idle slots still cache — and the tokens of the tasks running now (prompt plus
   * generated so far), read from the engine's slots every second while Ready and published with the slot
   * load. Null while not serving or where the engine does not report them; absent in older records.
   */
  readonly kv_used_permille?: number | null | undefined;
  readonly inflight_tokens?: number | null | undefined;
  /**
   * OC-POOL-3030: engine launches by outcome since the replica process started. Optional: records from
   * replicas that predate it have none.
   */
  readonly launch_outcomes?: Readonly<Partial<Record<LaunchOutcome, number>>> | undefined;
  /**
   * Where gateways ask this replica to start decoding a task before its workflow is scheduled
   * (.specs/decisions/2026-12-06-fast-start.md). Optional: older records and replicas without the listener have none.
   */
  readonly fast_start_url?: string | null | undefined;
  /**
   * ORCH-3046: Ready on its own lane only, because another replica set serves the pool queue; placement never
   * chooses it (its set would take tasks the pool queue's set does not). Absent otherwise.
   */
  readonly pool_queue_standby?: true | undefined;
  readonly updated_at: string;
}

/** Temporal names of the replica status record (workflows/replica-status-workflow.ts). */
export const REPLICA_STATUS_WORKFLOW_TYPE = 'replicaStatusWorkflow';
export const REPLICA_STATUS_SIGNAL = 'replicaStatus';
export const REPLICA_STATUS_QUERY = 'replicaStatus';

export function replicaId(poolId: string, replicaIndex: number): string {
  return `${poolId}-r${replicaIndex}`;
}

export function replicaStatusWorkflowId(poolId: string, replica: string): string {
  return `replica-${poolId}-${replica}`;
}
