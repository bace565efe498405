import { ErrorCode, isErrorCode } from '../../core/errors';

/** Why a replica aborts the tasks it still runs, and whether Temporal should retry them elsewhere. */
export interface ReplicaAbortReason {
  readonly code: ErrorCode;
  readonly message: string;
  readonly retry: boolean;
}

/** A drain's deadline passed (ORCH-2101): the client's stream ends with POOL_UNAVAILABLE, not retried. */
export function drainDeadlineAbort(deadlineMs: number): ReplicaAbortReason {
  return { code: ErrorCode.POOL_UNAVAILABLE, message: `the pool was drained and the task still ran at the drain deadline (${deadlineMs} ms)`, retry: false };
}

/** A shutdown's grace passed: the attempt fails and Temporal retries the task on another replica. */
export function shutdownAbort(graceMs: number): ReplicaAbortReason {
  return { code: ErrorCode.WORKER_RESET, message: `the replica shut down; the task still ran after ${graceMs} ms of grace`, retry: true };
}

export function isReplicaAbortReason(value: unknown): value is ReplicaAbortReason {
  if (typeof value !== 'object' || value === null) return false;
  const candidate = value as Partial<ReplicaAbortReason>;
  return isErrorCode(candidate.code) && typeof candidate.message === 'string' && typeof candidate.retry === 'boolean';
}
