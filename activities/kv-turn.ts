import type { CompletionSummary } from '../gpu-workers/engines/engine-adapter';
import type { KvResidency } from '../gpu-workers/kv-residency';

/** The `kv` metrics frame a replica sends before `end` (ORCH-3022/3023; snake_case like every frame). */
export interface KvTurnReport {
  /** The slot's cached prefix was really reused for this turn (the engine said so). */
  readonly kv_warmth: boolean;
  /** What the session keeps resident on this replica after the turn. */
  readonly kv_bytes: number;
  readonly tokens_cached: number;
  readonly kv_sessions_resident: number;
  readonly kv_resident_bytes: number;
  readonly kv_evictions_total: number;
  readonly kv_migrated: false;
}

/** Records a finished turn in the replica's KV residency and says what the gateway should know. */
export function runKvTurn(kv: KvResidency, session: string, slotId: number | undefined, cachePrompt: boolean, summary: unknown): KvTurnReport {
  const engine = isSummary(summary) ? summary : undefined;
  const tokensCached = engine?.tokensCached ?? 0;
  // An unpinned request (every slot was taken) ran where the engine chose: nothing is known to be kept.
  const resident = slotId !== undefined && tokensCached > 0 ? kv.record(session, slotId, tokensCached) : undefined;
  return {
    kv_warmth: cachePrompt && (engine?.promptTokensFromCache ?? 0) > 0,
    kv_bytes: resident?.bytes ?? 0,
    tokens_cached: resident?.cachedTokens ?? 0,
    kv_sessions_resident: kv.residentSessions,
    kv_resident_bytes: kv.residentBytes,
    kv_evictions_total: kv.evictionsTotal,
    kv_migrated: false,
  };
}

function isSummary(value: unknown): value is CompletionSummary {
  return typeof value === 'object' && value !== null && 'tokensOut' in value;
}
