import { ErrorCode } from '../../core/errors';
import type { AdmitSnapshot, PlaceSnapshot } from './snapshot';

/**
 * Decisions as the orchestrator consumes them. Both the built-in policy and every plugin end in
 * these types, so the caller never knows (or cares) which produced a decision, except through the
 * outcome's `decidedBy`.
 */

/** The contract error codes a rejection may carry; each is a member of core/errors.ts. */
export const REJECT_CODES = [
  ErrorCode.ADMISSION_REJECT,
  ErrorCode.QUEUE_FULL_DROP_LRU,
  ErrorCode.INVALID_PARAMS,
  ErrorCode.DEADLINE_UNMET,
  ErrorCode.POOL_UNREADY,
  ErrorCode.POOL_UNAVAILABLE,
  ErrorCode.MODEL_DEPRECATED,
] as const;
export type RejectCode = (typeof REJECT_CODES)[number];

export type AdmitDecision =
  | { readonly kind: 'accept' }
  | {
      readonly kind: 'reject';
      readonly code: RejectCode;
      readonly retryAfterMs?: number;
      readonly policyLabel?: string;
    }
  /** Accept the request and evict `victimTaskId`, a task of `snapshot.queue.tasks`. */
  | { readonly kind: 'shed'; readonly victimTaskId: string };

/** Replica ids, best first; a candidate left out is not eligible. Empty: no candidate fits. */
export interface PlaceDecision {
  readonly replicaIds: readonly string[];
}

/**
 * A policy that runs in-process (ORCH-3048 allows a native trait beside the WASI ABI). The built-in
 * policy implements it; a plugin is the same two functions behind the sandbox. Both must be pure.
 */
export interface NativePolicy {
  readonly id: string;
  readonly version: string;
  admit(snapshot: AdmitSnapshot): AdmitDecision;
  place(snapshot: PlaceSnapshot): PlaceDecision;
}
