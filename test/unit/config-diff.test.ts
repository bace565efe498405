import { liveChanges, restartRequiredBy } from '../../api/config-diff';
import { parseConfig } from '../../core/config';

function config(pool: Record<string, unknown> = {}, top: Record<string, unknown> = {}) {
  return parseConfig({
    pools: [{ id: 'p', engine: 'llamacpp', model: 'mock:p', devices: [0], engine_runtime: { kind: 'mock' }, ...pool }],
    auth: { mode: 'disabled' },
    ...top,
  }).config;
}

test('ORCH-3031: queue capacities, full policies, rate limits, quotas and keys change live', () => {
  const next = config({ queue: { capacity: 7, full_policy: 'drop-lru' }, admission: { priorities: [{ name: 'batch', rate_limit_rps: 3 }] } }, { quotas: { default: { max_concurrent_jobs: 2 } } });
  expect(restartRequiredBy(config(), next)).toBeNull();
  expect(liveChanges(config(), next)).toEqual(['pools[0].queue', 'pools[0].admission', 'quotas']);
});

test('ORCH-3031: a change that needs a restart is named by its path', () => {
  expect(restartRequiredBy(config(), config({ replicas: 2 }))).toBe('pools[0].replicas');
  expect(restartRequiredBy(config(), config({ engine_runtime: { kind: 'mock', slots: 8 } }))).toBe('pools[0].engine_runtime.slots');
  expect(restartRequiredBy(config(), config({}, { gateway: { port: 9999 } }))).toBe('gateway.port');
  expect(restartRequiredBy(config(), config({}, { models: [{ ref: 'm', source: { kind: 'file', path: '/m.gguf' } }] }))).toBe('models.length');
  const twoPools = parseConfig({
    pools: [
      { id: 'p', engine: 'llamacpp', model: 'mock:p', devices: [0], engine_runtime: { kind: 'mock' } },
      { id: 'q', engine: 'llamacpp', model: 'mock:q', devices: [0], engine_runtime: { kind: 'mock' } },
    ],
    auth: { mode: 'disabled' },
  }).config;
  expect(restartRequiredBy(config(), twoPools)).toBe('pools.length');
});

test('ORCH-3031 ORCH-3041: SLO objectives change live; the window and the breaker need a restart', () => {
  const tighter = config({}, { slo: { interactive: { ttft_p95_ms: 500 }, batch: { min_tokens_per_second: 40 }, min_samples: 5 } });
  expect(restartRequiredBy(config(), tighter)).toBeNull();
  expect(liveChanges(config(), tighter)).toEqual(['slo.interactive', 'slo.batch', 'slo.min_samples']);
  expect(restartRequiredBy(config(), config({}, { slo: { window_ms: 30_000 } }))).toBe('slo.window_ms');
});
