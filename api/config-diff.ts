import type { OrchConfig } from '../core/config';

/**
 * ORCH-3031 hot reload: what may change without a restart. Queue capacities, full policies and per-class
 * rate limits are read from the pool's config on every admission; quotas and API keys are swapped in
 * their holders. Everything else — pools added or removed, engine, runtime, replicas, model, ctx, the
 * model catalog, ports, Temporal, policy plugins, SLOs — needs a restart.
 */
const LIVE_POOL_FIELDS = ['queue', 'admission'] as const;
const LIVE_AUTH_FIELDS = ['keys', 'keys_file'] as const;
/** The SLO objectives; the window length and the breaker's timing are fixed at start. */
const LIVE_SLO_FIELDS = ['interactive', 'batch', 'min_samples'] as const;

/** The config with every live field removed: two configs that differ only live compare equal. */
function restartRelevant(config: OrchConfig): unknown {
  const pools = config.pools.map((pool) => {
    const copy: Record<string, unknown> = { ...pool };
    for (const field of LIVE_POOL_FIELDS) delete copy[field];
    return copy;
  });
  const auth: Record<string, unknown> = { ...config.auth };
  for (const field of LIVE_AUTH_FIELDS) delete auth[field];
  const slo: Record<string, unknown> = { ...config.slo };
  for (const field of LIVE_SLO_FIELDS) delete slo[field];
  // Quotas are live as a whole section.
  return { ...config, quotas: null, pools, auth, slo };
}

/** The first path (e.g. `pools[0].replicas`) where two values differ, or null when they are equal. */
export function firstDifference(left: unknown, right: unknown, path = ''): string | null {
  if (Object.is(left, right)) return null;
  if (typeof left !== 'object' || typeof right !== 'object' || left === null || right === null || Array.isArray(left) !== Array.isArray(right)) {
    return path || '(root)';
  }
  if (Array.isArray(left) && Array.isArray(right)) {
    if (left.length !== right.length) return `${path}.length`;
    for (let index = 0; index < left.length; index += 1) {
      const found = firstDifference(left[index], right[index], `${path}[${index}]`);
      if (found !== null) return found;
    }
    return null;
  }
  const leftRecord = left as Record<string, unknown>;
  const rightRecord = right as Record<string, unknown>;
  const keys = [...new Set([...Object.keys(leftRecord), ...Object.keys(rightRecord)])].sort();
  for (const key of keys) {
    const found = firstDifference(leftRecord[key], rightRecord[key], path ? `${path}.${key}` : key);
    if (found !== null) return found;
  }
  return null;
}

/** The field a reload from `current` to `next` would need a restart for, or null when all of it is live. */
export function restartRequiredBy(current: OrchConfig, next: OrchConfig): string | null {
  return firstDifference(restartRelevant(current), restartRelevant(next));
}

/** The live fields that differ (for the answer and the log). */
export function liveChanges(current: OrchConfig, next: OrchConfig): string[] {
  const changed: string[] = [];
  current.pools.forEach((pool, index) => {
    const other = next.pools[index];
    for (const field of LIVE_POOL_FIELDS) if (other && firstDifference(pool[field], other[field]) !== null) changed.push(`pools[${index}].${field}`);
  });
  if (firstDifference(current.quotas, next.quotas) !== null) changed.push('quotas');
  for (const field of LIVE_AUTH_FIELDS) if (firstDifference(current.auth[field], next.auth[field]) !== null) changed.push(`auth.${field}`);
  for (const field of LIVE_SLO_FIELDS) if (firstDifference(current.slo[field], next.slo[field]) !== null) changed.push(`slo.${field}`);
  return changed;
}
