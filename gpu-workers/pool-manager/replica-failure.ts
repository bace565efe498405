import { ErrorCode } from '../../core/errors';
import type { ReplicaError, ReplicaFailureKind } from '../../core/replica-status';

/**
 * Why a start attempt or a running engine failed. `retriable: false` means waiting cannot help
 * (no GPU on this host), so the replica stays Unready without restarting.
 */
export class ReplicaFailure extends Error {
  constructor(
    readonly code: ErrorCode,
    readonly kind: ReplicaFailureKind,
    message: string,
    readonly retriable = true,
  ) {
    super(message);
    this.name = 'ReplicaFailure';
  }

  toReplicaError(nowMs: number): ReplicaError {
    return { code: this.code, kind: this.kind, message: this.message, at: new Date(nowMs).toISOString() };
  }
}

export function isReplicaFailure(value: unknown): value is ReplicaFailure {
  return value instanceof ReplicaFailure;
}

/** A failure that is not one of ours (a bug, an I/O error) still reaches health as a worker reset. */
export function asReplicaFailure(error: unknown, kind: ReplicaFailureKind = 'engine_exit'): ReplicaFailure {
  if (isReplicaFailure(error)) return error;
  return new ReplicaFailure(ErrorCode.WORKER_RESET, kind, error instanceof Error ? error.message : String(error));
}
