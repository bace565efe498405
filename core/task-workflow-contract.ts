import type { ErrorCode } from './errors';
import type { TaskState } from './search-attributes';
import type { TaskRequest } from './task-request';
import type { ChatMessage, SamplingOverrides } from './generation-options';

/**
 * The task workflow's type, input and result: a documented, versioned interface that batch pipelines
 * use directly with the Temporal client (design §8, .specs/task-workflow-v1.md). Additive changes only
 * within version 1.
 */
export const TASK_WORKFLOW_TYPE = 'taskWorkflow';

/** The `cancelTask` reason a gateway gives when a full queue's policy evicts the task (drop-lru, shed). */
export const EVICTION_REASON = 'queue-full-eviction';

export interface TaskTimeouts {
  /** Longest a single decode may run (pool `timeouts.wall_ms`) → DECODE_TIMEOUT. */
  readonly wallMs: number;
  /** Longest gap between tokens (pool `timeouts.idle_ms`) → DECODE_TIMEOUT. */
  readonly idleMs: number;
  /** Liveness of the pool worker; a silent worker's task is retried on another replica. */
  readonly heartbeatMs: number;
  /** Attempts before a task whose workers keep dying fails with WORKER_RESET. */
  readonly maxAttempts: number;
}

export interface TaskWorkflowInput {
  readonly version: 1;
  /** Validated request with defaults applied (seed, sampler profile, determinism). */
  readonly request: TaskRequest & { readonly seed: number; readonly sampler_profile_version: 'v1' };
  readonly poolId: string;
  readonly clientId: string;
  readonly admittedAtMs: number;
  readonly timeouts: TaskTimeouts;
  /** Where token parts go (a gateway's internal base URL); absent for pipelines that read only the result. */
  readonly streamSinkUrl?: string | undefined;
  /**
   * Added in 1.x: run on this replica's lane first (ORCH-3009 session affinity, or a policy pin), waiting
   * at most `waitMs` for it to pick the task up, then fall back to the pool queue. Absent: pool queue only.
   */
  readonly placement?: TaskPlacement | undefined;
  /**
   * Added 2026-12-06 (OpenAI-compatible requests, .specs/decisions/2026-12-06-openai-surface.md): chat
   * messages the engine renders with the model's chat template (then `request.prompt` is empty), and
   * sampler values over the profile's. Absent: the task runs exactly as before.
   */
  readonly chat?: readonly ChatMessage[] | undefined;
  readonly sampling?: SamplingOverrides | undefined;
}

/** `fast-start`: the replica was already decoding when the workflow started (.specs/decisions/2026-12-06-fast-start.md). */
export const PLACEMENT_REASONS = ['session-affinity', 'policy-pin', 'fast-start'] as const;
export type PlacementReason = (typeof PLACEMENT_REASONS)[number];

export interface TaskPlacement {
  readonly replicaId: string;
  readonly waitMs: number;
  readonly reason: PlacementReason;
  /**
   * Added 2026-12-06, fast starts only: the replica's fast-start listener, where the workflow's local
   * activity collects the outcome of the run it began (.specs/decisions/2026-12-06-fast-start.md).
   */
  readonly fastStartUrl?: string | undefined;
}

export interface TaskResult {
  readonly version: 1;
  readonly taskId: string;
  readonly state: Extract<TaskState, 'completed' | 'cancelled'>;
  readonly text: string;
  /** Token texts in order; the gateway rebuilds a stream from them when it holds no live copy. */
  readonly tokens: readonly string[];
  readonly tokensOut: number;
  readonly decodeMs: number;
  readonly queueTimeMs: number;
  readonly replicaId?: string | undefined;
  readonly engineVersion?: string | undefined;
  readonly attempt: number;
  /** Added in 1.x: how placement went — absent when the task was not placed (ORCH-3009/3023). */
  readonly placement?: PlacementResult | undefined;
  /** Added in 1.x: the session's cached KV was reused on the replica (ORCH-3022); KV never migrates. */
  readonly kvWarmth?: boolean | undefined;
  readonly kvMigrated?: false | undefined;
}

/** `laneHit`: the placed replica ran the task; otherwise it fell back (kv_warmth=false, kv_migrated=false). */
export interface PlacementResult {
  readonly replicaId: string;
  readonly reason: PlacementReason;
  readonly laneHit: boolean;
}

/** What the engine activity returns (the workflow adds the bookkeeping). */
export interface EngineRunOutcome {
  readonly outcome: 'completed' | 'cancelled';
  readonly tokens: readonly string[];
  readonly tokensOut: number;
  readonly decodeMs: number;
  readonly queueTimeMs: number;
  readonly replicaId: string;
  readonly engineVersion: string;
  /** The gateway already holds the terminal frame (it accepted `end`, or it cancelled the task). */
  readonly streamEnded: boolean;
  readonly attempt: number;
  /** ORCH-3022: the session's cached prompt prefix was really reused on this replica's slot. */
  readonly kvWarmth?: boolean | undefined;
  /** Bytes of KV the session keeps resident on the replica after this turn (0: nothing kept). */
  readonly kvBytes?: number | undefined;
}

export interface EngineRunInput {
  readonly workflow: TaskWorkflowInput;
  /** Attempts already spent elsewhere (a placement lane), so the gateway sees a new attempt and resets. */
  readonly attemptOffset?: number | undefined;
}

export interface TaskStatus {
  readonly state: TaskState;
}

export interface TerminalReport {
  readonly taskId: string;
  readonly streamSinkUrl: string;
  readonly part:
    | { readonly type: 'end'; readonly tokensOut: number; readonly decodeMs: number }
    | { readonly type: 'error'; readonly code: ErrorCode; readonly message: string; readonly engine: string }
    | { readonly type: 'cancelled' };
}
