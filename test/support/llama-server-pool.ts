import { request } from 'undici';
import { ensureLlamaServer } from '../../cli/llama-server-build';
import { DEFAULT_SYNTHETIC_MODEL_SPEC, ensureSyntheticModel } from '../../cli/model-artifacts';
import type { ModelArtifact } from '../../cli/model-artifacts';
import { cachedPoolArtifacts } from '../../cli/provision-pools';
import type { GpuProbeResult } from '../../gpu-workers/pool-manager/gpu-probe';
import type { PoolWorkerOptions } from '../../gpu-workers/pool-worker';
import { TEST_AUTH_HEADERS, type CustomPool } from './stack';

/** The first run compiles llama.cpp (~5 min on 2 cores, more on a loaded machine). */
export const PROVISION_TIMEOUT_MS = 30 * 60_000;

export const SYNTHETIC_MODEL_REF = 'synthetic-llama-test';

/** The catalog entry of the synthetic model tests use (fast: ~0.5 ms per token on 2 cores). */
export function syntheticModelEntry(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const spec = DEFAULT_SYNTHETIC_MODEL_SPEC;
  return {
    ref: SYNTHETIC_MODEL_REF,
    source: {
      kind: 'synthetic',
      seed: spec.seed,
      embedding_length: spec.embeddingLength,
      block_count: spec.blockCount,
      head_count: spec.headCount,
      feed_forward_length: spec.feedForwardLength,
      context_length: spec.contextLength,
    },
    ...overrides,
  };
}

/** Builds (first run) and caches llama-server and the synthetic model before a suite starts pools. */
export async function provisionSyntheticEngine(): Promise<ModelArtifact> {
  await ensureLlamaServer();
  return await ensureSyntheticModel(DEFAULT_SYNTHETIC_MODEL_SPEC);
}

/** A llama-server pool on the synthetic model under the CPU development override. */
/** A second synthetic model for reload tests: another seed, so another file, digest and replica-set key. */
export const SECOND_MODEL_REF = 'synthetic-llama-test-2';
/** The first model's file under another catalog name with a wrong digest: verification must refuse it. */
export const UNTRUSTED_MODEL_REF = 'synthetic-llama-untrusted';

/** The catalog a reload test serves from: the synthetic model, a second one (written here), and an untrusted copy. */
export async function reloadTestCatalog(): Promise<{ first: Record<string, unknown>; models: Record<string, unknown>[] }> {
  const secondSeed = DEFAULT_SYNTHETIC_MODEL_SPEC.seed + 1;
  await ensureSyntheticModel({ ...DEFAULT_SYNTHETIC_MODEL_SPEC, seed: secondSeed });
  const first = syntheticModelEntry();
  const second = syntheticModelEntry({ ref: SECOND_MODEL_REF, source: { ...(first['source'] as Record<string, unknown>), seed: secondSeed } });
  const untrusted = syntheticModelEntry({ ref: UNTRUSTED_MODEL_REF, sha256: '0'.repeat(64) });
  return { first, models: [first, second, untrusted] };
}

export function llamaServerPool(runtime: Record<string, unknown> = {}, model: Record<string, unknown> = syntheticModelEntry()): CustomPool {
  return {
    model: String(model['ref']),
    models: [model],
    dev: { allow_cpu_inference: true },
    engineRuntime: { kind: 'llama-server', slots: 1, threads: 2, ...runtime },
  };
}

/** A host without NVIDIA GPUs, whatever this machine has: the suites then run the same everywhere. */
export const noGpu = (): Promise<GpuProbeResult> => Promise.resolve({ nvidiaGpus: 0, detail: 'test: no GPU' });

export const cpuReplicaOptions: Pick<PoolWorkerOptions, 'artifacts' | 'probeGpus'> = {
  artifacts: cachedPoolArtifacts(),
  probeGpus: noGpu,
};

export async function postTask(url: string, body: Record<string, unknown>): Promise<{ statusCode: number; body: Record<string, unknown> }> {
  const response = await request(`${url}/v1/tasks`, { method: 'POST', headers: { 'content-type': 'application/json', ...TEST_AUTH_HEADERS }, body: JSON.stringify(body) });
  return { statusCode: response.statusCode, body: (await response.body.json()) as Record<string, unknown> };
}

export type PoolHealthBody = Record<string, unknown> & { metrics: Record<string, unknown> & { replicas: Record<string, unknown>[] } };

export async function poolHealth(url: string, poolId: string): Promise<PoolHealthBody> {
  const response = await request(`${url}/v1/pools/${poolId}/health`, { headers: TEST_AUTH_HEADERS });
  return (await response.body.json()) as PoolHealthBody;
}
