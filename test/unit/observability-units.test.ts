import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { ApiKeyStore, hashApiKey, loadApiKeys, mintApiKey } from '../../api/auth/api-keys';
import { PoolCircuitBreaker } from '../../api/admission/circuit-breaker';
import { TenantQuotas } from '../../api/admission/tenant-quota';
import { parseNvidiaSmi } from '../../api/observability/host-resources';
import { LABEL_BUDGETS, OrchMetrics } from '../../api/observability/metrics';
import { SloTracker, type SloSample } from '../../api/observability/slo-tracker';
import { ensureDevApiKey } from '../../cli/dev-api-key';
import { parseConfig } from '../../core/config';
import { captureLogs } from '../support/log-capture';
import { parsePrometheusText } from '../support/prometheus-text';
import { testConfig } from '../support/stack';

const { config } = testConfig();

test('OC-METRICS-7102: a label value past its budget is folded into "other" and counted', async () => {
  const metrics = new OrchMetrics({ ...LABEL_BUDGETS, pool_id: 2 });
  for (const pool of ['a', 'b', 'c', 'd']) metrics.set('poolReplicasReady', { pool_id: pool }, 1);
  const { samples } = parsePrometheusText(await metrics.exposition());
  expect(samples.filter((sample) => sample.name === 'pool_replicas_ready').map((sample) => sample.labels['pool_id']).sort()).toEqual(['a', 'b', 'other']);
  expect(samples.find((sample) => sample.name === 'metric_label_overflow_total' && sample.labels['metric'] === 'pool_replicas_ready' && sample.labels['label'] === 'pool_id')?.value).toBe(2);
});

test('ORCH-3035: keys are matched by SHA-256 only; an unknown or empty key matches nothing', () => {
  const key = mintApiKey();
  const store = new ApiKeyStore([{ id: 'k', tenant: 't', scopes: ['data'], sha256: hashApiKey(key) }]);
  expect(store.lookup(key)).toEqual({ keyId: 'k', tenant: 't', scopes: ['data'] });
  expect(store.lookup(`${key}x`)).toBeUndefined();
  expect(store.lookup('')).toBeUndefined();
});

test('ORCH-3035 OC-CTRL-2041: the development key is stored only as its hash, and the gateway accepts it', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'llama-orch-devkey-'));
  const devKey = ensureDevApiKey({ data_dir: dataDir });
  if (!devKey.created) throw new Error('expected a new key');
  const stored = readFileSync(devKey.path, 'utf8');
  expect(stored.includes(devKey.key)).toBe(false);
  expect(stored).toContain(hashApiKey(devKey.key));
  expect(ensureDevApiKey({ data_dir: dataDir }).created).toBe(false);
  const { config: withDevKey } = parseConfig({ ...configDocument(), data_dir: dataDir, auth: { dev_key: true } });
  expect(loadApiKeys(withDevKey, { configDir: dataDir }).lookup(devKey.key)?.tenant).toBe('dev');
});

test('ORCH-3036: a tenant is bounded in concurrent jobs and in KV + scratch memory, with a typed 429', () => {
  // The ledger tells the quotas when a task leaves it; this stands in for it.
  let forget: (taskId: string) => void = () => undefined;
  const quotas = new TenantQuotas(
    { default: { max_concurrent_jobs: 2, max_memory_bytes: 1_000 }, tenants: [{ tenant: 'big', max_concurrent_jobs: null, max_memory_bytes: null }], kv_bytes_per_token: 100, scratch_bytes_per_job: 0 },
    { onForget: (listener) => { forget = listener; } },
  );
  const admit = (tenant: string, taskId: string, ctx: number) => quotas.reserve(tenant, 'p', taskId, ctx, 'llamacpp');
  admit('small', 't1', 1);
  admit('small', 't2', 1);
  expect(thrownBy(() => admit('small', 't3', 1))).toEqual(expect.objectContaining({ code: 'ADMISSION_REJECT', details: expect.objectContaining({ policyLabel: 'tenant-quota' }) }));
  forget('t1');
  expect(() => admit('small', 't4', 20)).toThrow(/over its quota of 1000/);
  admit('small', 't5', 5);
  for (let index = 0; index < 5; index += 1) admit('big', `b${index}`, 1_000);
  expect(quotas.usage().get('small')).toEqual({ jobs: 2, memoryBytes: 600 });
});

describe('ORCH-3041 ORCH-3040: SLOs measured per window, breach logged, breaker sheds load', () => {
  const sloConfig = { ...config.slo, min_samples: 4, window_ms: 1_000 };
  const sample = (at: number, ttftMs: number, ok = true): SloSample => ({ poolId: 'p', priority: 'interactive', at, ttftMs, decodeMs: 100, tokensOut: 64, ok });

  test('ORCH-3041: attainment is the share meeting the objective; a breach is a log event; too few samples are not judged', () => {
    const logs = captureLogs();
    const tracker = new SloTracker(sloConfig, pino(logs.stream));
    for (let index = 0; index < 3; index += 1) tracker.record(sample(100 + index, 5_000));
    expect(tracker.evaluate(1_000).breachedPools.size).toBe(0);
    for (let index = 0; index < 8; index += 1) tracker.record(sample(1_100 + index, index < 6 ? 100 : 5_000));
    const { overall, breachedPools } = tracker.evaluate(2_000);
    expect(overall.find((result) => result.objective === 'ttft')).toEqual(expect.objectContaining({ attainment: 0.75, target: 0.95, breached: true }));
    expect([...breachedPools]).toEqual(['p']);
    expect(logs.lines().filter((line) => line['event'] === 'slo_breach')).toEqual([expect.objectContaining({ priority: 'interactive', objective: 'ttft' })]);
  });

  test('ORCH-3031 ORCH-3041: a hot reload of the objectives judges the samples already in the window by the new bound', () => {
    const tracker = new SloTracker(sloConfig, pino(captureLogs().stream));
    for (let index = 0; index < 8; index += 1) tracker.record(sample(100 + index, 700));
    expect(tracker.evaluate(900).breachedPools.size).toBe(0);
    tracker.reconfigure({ ...sloConfig, interactive: { ...sloConfig.interactive, ttft_p95_ms: 500 } });
    expect([...tracker.evaluate(950).breachedPools]).toEqual(['p']);
  });

  test('ORCH-3041: batch throughput is the share of batch tasks decoding at least slo.batch.min_tokens_per_second, measured per window and exported', async () => {
    const metrics = new OrchMetrics();
    const tracker = new SloTracker({ ...sloConfig, batch: { ...sloConfig.batch, min_tokens_per_second: 20 } }, pino(captureLogs().stream), metrics);
    const batch = (at: number, tokensOut: number, decodeMs: number): SloSample => ({ poolId: 'p', priority: 'batch', at, decodeMs, tokensOut, ok: true });
    // 64 tokens in 2 s is 32 tok/s (met); in 4 s it is 16 tok/s (missed); no tokens or no decode time is not judged.
    for (let index = 0; index < 6; index += 1) tracker.record(batch(100 + index, 64, 2_000));
    for (let index = 0; index < 2; index += 1) tracker.record(batch(200 + index, 64, 4_000));
    tracker.record(batch(300, 0, 10));
    tracker.record({ poolId: 'p', priority: 'batch', at: 301, tokensOut: 0, ok: false });
    const { overall, breachedPools } = tracker.evaluate(900);
    expect(overall.find((result) => result.priority === 'batch' && result.objective === 'throughput')).toEqual(
      expect.objectContaining({ attainment: 0.75, target: 0.95, samples: 8, breached: true }),
    );
    expect(overall.find((result) => result.priority === 'batch' && result.objective === 'errors')).toEqual(expect.objectContaining({ samples: 10, attainment: 0.9 }));
    expect([...breachedPools]).toEqual(['p']);
    tracker.publish(900);
    const { samples } = parsePrometheusText(await metrics.exposition());
    const gauge = (name: string) => samples.find((sample) => sample.name === name && sample.labels['priority'] === 'batch' && sample.labels['objective'] === 'throughput')?.value;
    expect({ attainment: gauge('slo_attainment_ratio'), target: gauge('slo_target_ratio') }).toEqual({ attainment: 0.75, target: 0.95 });
  });

  test('ORCH-3040: the breaker opens after consecutive breached windows, answers 503 with a retry hint, and closes after open_ms', () => {
    let now = 0;
    const breaker = new PoolCircuitBreaker({ enabled: true, breach_windows: 2, open_ms: 5_000 }, pino(captureLogs().stream), () => now);
    breaker.onWindow(new Set(['p']), ['p']);
    expect(breaker.isOpen('p')).toBe(false);
    breaker.onWindow(new Set(), ['p']);
    breaker.onWindow(new Set(['p']), ['p']);
    expect(breaker.isOpen('p')).toBe(false);
    breaker.onWindow(new Set(['p']), ['p']);
    expect(thrownBy(() => breaker.check('p', 'llamacpp'))).toEqual(expect.objectContaining({ code: 'POOL_UNAVAILABLE', details: expect.objectContaining({ retryAfterMs: 5_000, policyLabel: 'circuit-breaker' }) }));
    now = 5_001;
    expect(() => breaker.check('p', 'llamacpp')).not.toThrow();
  });
});

test('ORCH-3028: nvidia-smi CSV becomes per-device utilization and VRAM bytes', () => {
  expect(parseNvidiaSmi('0, 37, 1024, 81559\n1, 0, 3, 81559\n')).toEqual([
    { device: '0', utilizationPercent: 37, usedBytes: 1024 * 1024 * 1024, totalBytes: 81559 * 1024 * 1024 },
    { device: '1', utilizationPercent: 0, usedBytes: 3 * 1024 * 1024, totalBytes: 81559 * 1024 * 1024 },
  ]);
  expect(parseNvidiaSmi('NVIDIA-SMI has failed')).toEqual([]);
});

function thrownBy(action: () => void): unknown {
  try {
    action();
  } catch (error) {
    return error;
  }
  return undefined;
}

function configDocument(): Record<string, unknown> {
  return { pools: [{ id: 'p', engine: 'llamacpp', model: 'mock:p', devices: [0], engine_runtime: { kind: 'mock' } }] };
}
