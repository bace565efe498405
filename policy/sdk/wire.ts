import type { AdmitDecision, PlaceDecision, RejectCode } from './decision';
import { REJECT_CODES } from './decision';
import type { AdmitSnapshot, PlaceSnapshot } from './snapshot';

/**
 * The ABI's return values as jco lifts them from a plugin, and their translation into decisions.
 * Lifted values are untrusted: a plugin can return any value its WIT allows (a shed of a task that
 * is not queued, a ranking index out of range), so every check here turns into an
 * `invalid-decision` outcome instead of a wrong placement.
 */

const KEBAB_TO_CODE: ReadonlyMap<string, RejectCode> = new Map(
  REJECT_CODES.map((code) => [code.toLowerCase().replaceAll('_', '-'), code]),
);

export type DecodeResult<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly problem: string };

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

function fail<T>(problem: string): DecodeResult<T> {
  return { ok: false, problem };
}

/** `variant admit-decision` → AdmitDecision, checked against the snapshot it answers. */
export function decodeAdmitDecision(lifted: unknown, snapshot: AdmitSnapshot): DecodeResult<AdmitDecision> {
  if (!isRecord(lifted)) return fail('admit returned no variant');
  switch (lifted.tag) {
    case 'accept':
      return { ok: true, value: { kind: 'accept' } };
    case 'reject': {
      const rejection = lifted.val;
      if (!isRecord(rejection)) return fail('reject carries no rejection record');
      const code = typeof rejection.code === 'string' ? KEBAB_TO_CODE.get(rejection.code) : undefined;
      if (code === undefined) return fail(`unknown reject code ${String(rejection.code)}`);
      const { retryAfterMs, policyLabel } = rejection;
      return {
        ok: true,
        value: {
          kind: 'reject',
          code,
          ...(typeof retryAfterMs === 'number' ? { retryAfterMs } : {}),
          ...(typeof policyLabel === 'string' ? { policyLabel: policyLabel.slice(0, 128) } : {}),
        },
      };
    }
    case 'shed': {
      const victimTaskId = lifted.val;
      if (typeof victimTaskId !== 'string') return fail('shed names no task');
      if (!snapshot.queue.tasks.some((task) => task.taskId === victimTaskId)) {
        return fail(`shed names task ${victimTaskId.slice(0, 64)}, which is not queued`);
      }
      return { ok: true, value: { kind: 'shed', victimTaskId } };
    }
    default:
      return fail(`unknown admit-decision case ${String(lifted.tag)}`);
  }
}

/** `list<u32>` of candidate indices → replica ids, best first. */
export function decodePlaceDecision(lifted: unknown, snapshot: PlaceSnapshot): DecodeResult<PlaceDecision> {
  // jco lifts list<u32> as a Uint32Array; a structured clone keeps it one. Checked by tag, not
  // instanceof: the value may come from another realm (a worker, jest's vm context).
  const isU32Array = Object.prototype.toString.call(lifted) === '[object Uint32Array]';
  const indices: ArrayLike<unknown> | undefined = isU32Array || Array.isArray(lifted) ? (lifted as ArrayLike<unknown>) : undefined;
  if (indices === undefined) return fail('place returned no list');
  const seen = new Set<number>();
  const replicaIds: string[] = [];
  for (let position = 0; position < indices.length; position += 1) {
    const index = indices[position];
    if (typeof index !== 'number' || !Number.isInteger(index)) return fail('ranking holds a non-integer');
    const candidate = snapshot.candidates[index];
    if (candidate === undefined) return fail(`ranking index ${index} is out of range (${snapshot.candidates.length} candidates)`);
    if (seen.has(index)) return fail(`ranking names candidate ${index} twice`);
    seen.add(index);
    replicaIds.push(candidate.replicaId);
  }
  return { ok: true, value: { replicaIds } };
}
