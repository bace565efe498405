import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sha256File } from '../../cli/model-artifacts';
import { parseConfig } from '../../core/config';
import { formatReplicaIdentity, parseReplicaIdentity } from '../../core/ids';
import { writeGguf } from '../../gpu-workers/models/gguf-writer';
import type { GgufValue } from '../../gpu-workers/models/gguf-writer';
import { checkDeviceBudget, planDeviceBudget } from '../../gpu-workers/pool-manager/device-budget';
import { probeNvidiaGpus } from '../../gpu-workers/pool-manager/gpu-probe';
import { nvidiaSmiMemoryProbe } from '../../gpu-workers/pool-manager/headroom';
import { createLlamaServerLauncher } from '../../gpu-workers/pool-manager/llama-server-launcher';
import { decideMembership } from '../../gpu-workers/pool-manager/pool-queue-membership';
import type { PoolQueueMember } from '../../gpu-workers/pool-manager/pool-queue-membership';
import type { PoolArtifacts } from '../../gpu-workers/pool-manager/pool-artifacts';
import { createLogger } from '../../platform/logger';
import { placementCandidates } from '../../api/placement/placement-candidates';
import { configProblemsOf } from '../support/config-problems';
import { replicaStatusFixture } from '../support/replica-status-fixture';
import { captureLogs } from '../support/log-capture';

/**
 * Multi-GPU placement without a GPU: the GPU facts come from a fake `nvidia-smi` (a shell script) given to the
 * probes as the tool's path, so they run as on a GPU host (exec, parse) and only the tool's answers are made up.
 */

const MIB = 1024 * 1024;
const GIB = 1024 * MIB;
const directory = mkdtempSync(join(tmpdir(), 'orch-multi-gpu-'));
const NVIDIA_SMI = join(directory, 'bin', 'nvidia-smi');

afterAll(() => {
  rmSync(directory, { recursive: true, force: true });
});

interface FakeGpu {
  readonly index: number;
  readonly name: string;
  readonly totalMib: number;
  readonly usedMib: number;
}

/** Answers `-L` and the memory query as nvidia-smi does, for the GPUs given. */
function fakeNvidiaSmi(gpus: readonly FakeGpu[]): void {
  const bin = join(directory, 'bin');
  const list = gpus.map((gpu) => `GPU ${gpu.index}: ${gpu.name} (UUID: GPU-0000000${gpu.index})`).join('\n');
  const memory = gpus.map((gpu) => `${gpu.index}, ${gpu.totalMib}, ${gpu.usedMib}`).join('\n');
  mkdirSync(bin, { recursive: true });
  const script = NVIDIA_SMI;
  writeFileSync(
    script,
    `#!/bin/sh
case "$1" in
  -L) printf '%s\\n' "${list}" ;;
  --query-gpu=index,memory.total,memory.used) printf '%s\\n' "${memory}" ;;
  *) exit 0 ;;
esac
`,
  );
  chmodSync(script, 0o755);
}

/** A llama GGUF with no tensors but real metadata: KV bytes per token = 2 × 32 layers × 8 KV heads × 128 × 2 = 128 KiB. */
async function llamaHeader(): Promise<{ path: string; sha256: string }> {
  const path = join(directory, 'llama-8b-like.gguf');
  const metadata = new Map<string, GgufValue>([
    ['general.architecture', { type: 'string', value: 'llama' }],
    ['llama.block_count', { type: 'uint32', value: 32 }],
    ['llama.attention.head_count', { type: 'uint32', value: 32 }],
    ['llama.attention.head_count_kv', { type: 'uint32', value: 8 }],
    ['llama.embedding_length', { type: 'uint32', value: 4096 }],
  ]);
  await writeGguf(path, { metadata, tensors: [] });
  return { path, sha256: await sha256File(path) };
}

const KV_BYTES_PER_TOKEN = 2 * 32 * 8 * 128 * 2;

function gpuPool(devices: number[], extra: Record<string, unknown> = {}, runtime: Record<string, unknown> = {}) {
  const { config } = parseConfig({
    models: [{ ref: 'm', source: { kind: 'file', path: '/unused.gguf' }, sha256: 'a'.repeat(64) }],
    pools: [{ id: 'gpu', engine: 'llamacpp', model: 'm', ctx: 8192, devices, determinism: 'best_effort', ...extra, engine_runtime: { kind: 'llama-server', slots: 4, ...runtime } }],
  });
  const pool = config.pools[0];
  if (pool?.engine_runtime.kind !== 'llama-server') throw new Error('no llama-server pool');
  return { pool, runtime: pool.engine_runtime };
}

function launcherFor(devices: number[], options: { extra?: Record<string, unknown>; runtime?: Record<string, unknown>; allowCpu?: boolean; backend?: 'cpu' | 'cuda'; model?: { path: string; sha256: string } } = {}) {
  const { pool, runtime } = gpuPool(devices, options.extra, options.runtime);
  const logs = captureLogs();
  const model = options.model;
  const artifacts: PoolArtifacts = {
    // Never a llama.cpp build: a launch that gets past the checks spawns /bin/true, which exits at once.
    llamaServer: () => Promise.resolve({ path: '/bin/true', buildInfo: 'b0-test', backend: options.backend ?? 'cuda' }),
    model: () => Promise.resolve({ path: model?.path ?? '/unused.gguf', recordedSha256: model?.sha256 }),
  };
  const launcher = createLlamaServerLauncher({
    pool,
    runtime,
    models: (ref) => (ref === 'm' ? { ref: 'm', source: { kind: 'file', path: model?.path ?? '/unused.gguf' }, sha256: model?.sha256 ?? null } : undefined),
    allowCpuInference: options.allowCpu ?? false,
    artifacts,
    memory: nvidiaSmiMemoryProbe(NVIDIA_SMI),
    probeGpus: () => probeNvidiaGpus(NVIDIA_SMI),
    logger: createLogger('test', logs.stream),
  });
  return { launcher, logs };
}

const H100 = { name: 'NVIDIA H100 80GB HBM3', totalMib: 81_559, usedMib: 0 };

describe('device masks against the host (ORCH-1101, OC-POOL-3012, ORCH-3011)', () => {
  test('ORCH-1101 OC-POOL-3012 ORCH-3011: a mask naming a GPU the host lacks fails the start, not retried, naming the index and the GPUs found', async () => {
    fakeNvidiaSmi([{ index: 0, ...H100 }]);
    const { launcher } = launcherFor([5]);
    const refusal = await launcher.checkHost().then(() => undefined, (error: unknown) => error);
    expect(refusal).toEqual(expect.objectContaining({ code: 'POOL_UNAVAILABLE', kind: 'device_mask_invalid', retriable: false }));
    expect(String((refusal as Error).message)).toContain('names GPU 5');
    expect(String((refusal as Error).message)).toContain('GPU 0: NVIDIA H100 80GB HBM3');
  });

  test('ORCH-3011: a mask of GPUs the host has passes; a GPU index nvidia-smi skips is still refused', async () => {
    fakeNvidiaSmi([{ index: 0, ...H100 }, { index: 2, ...H100 }]);
    await expect(launcherFor([0, 2]).launcher.checkHost()).resolves.toEqual({ cpuInference: false });
    await expect(launcherFor([1]).launcher.checkHost()).rejects.toMatchObject({ kind: 'device_mask_invalid' });
  });

  test('ORCH-1101: under the CPU development override the mask is meaningless: not checked, said once in the log', async () => {
    fakeNvidiaSmi([]);
    const { launcher, logs } = launcherFor([5], { allowCpu: true, backend: 'cpu' });
    await expect(launcher.checkHost()).resolves.toEqual({ cpuInference: true });
    const lines = logs.lines().filter((line) => String(line['msg']).includes('device mask [5] is not used'));
    expect(lines).toHaveLength(1);
  });
});

describe('two pools never share a device (ORCH-3011, OC-POOL-3020)', () => {
  const models = [{ ref: 'm', source: { kind: 'file', path: '/m.gguf' }, sha256: 'a'.repeat(64) }];
  const spawned = (id: string, devices: number[], extra: Record<string, unknown> = {}) => ({ id, engine: 'llamacpp', model: 'm', devices, ...extra, engine_runtime: { kind: 'llama-server' } });

  test('ORCH-3011 OC-POOL-3020: overlapping masks of two engine-starting pools on one host are refused with the field path', () => {
    expect(configProblemsOf({ models, pools: [spawned('a', [0]), spawned('b', [1, 0])] })).toEqual([
      `pools[1].devices: GPU 0 is already pool "a"'s (pools[0].devices): two pools never share a device (ORCH-3011); give each its own GPUs, or a different host`,
    ]);
    expect(configProblemsOf({ models, pools: [spawned('a', [0, 0])] })).toEqual(['pools[0].devices: names GPU 0 twice']);
  });

  test('ORCH-3011: pools on different hosts, or whose engines are not started here (mock, external), may name the same index', () => {
    expect(configProblemsOf({ models, pools: [spawned('a', [0], { host: 'gpu-1' }), spawned('b', [0], { host: 'gpu-2' })] })).toEqual([]);
    expect(configProblemsOf({ models, pools: [spawned('a', [0], { host: 'gpu-1' }), spawned('b', [0], { host: 'gpu-1' })] })).toHaveLength(1);
    const mock = { id: 'mock', engine: 'llamacpp', model: 'mock:x', devices: [0], engine_runtime: { kind: 'mock' } };
    const external = { id: 'ext', engine: 'llamacpp', model: 'x', devices: [0], engine_runtime: { kind: 'external', url: 'http://127.0.0.1:9' } };
    expect(configProblemsOf({ models, pools: [spawned('a', [0]), mock, external] })).toEqual([]);
  });
});

describe('KV capped for the smallest GPU (ORCH-3052, OC-POOL-3021)', () => {
  test('ORCH-3052: each device holds its ratio of the weights and of ctx × slots of KV; without ratios the first device holds all', () => {
    const input = { devices: [0, 1], tensorSplit: [3, 1], modelBytes: 4 * GIB, kvBytesPerToken: KV_BYTES_PER_TOKEN, contextPerSlot: 8192, slots: 4 };
    const plan = planDeviceBudget(input);
    // 128 KiB × 8192 × 4 = 4 GiB of KV in all.
    expect(plan).toEqual([
      { device: 0, share: 0.75, weightsBytes: 3 * GIB, kvBytes: 3 * GIB, needBytes: 6 * GIB + 512 * MIB },
      { device: 1, share: 0.25, weightsBytes: 1 * GIB, kvBytes: 1 * GIB, needBytes: 2 * GIB + 512 * MIB },
    ]);
    expect(planDeviceBudget({ ...input, tensorSplit: null })).toEqual([{ device: 0, share: 1, weightsBytes: 4 * GIB, kvBytes: 4 * GIB, needBytes: 8 * GIB + 512 * MIB }]);
    // A configured figure is a floor, never a way round the KV cap.
    expect(planDeviceBudget({ ...input, configuredBytes: 1 })[1]?.needBytes).toBe(2 * GIB + 512 * MIB);
  });

  test('ORCH-3052 OC-POOL-3021: the smallest GPU whose share cannot hold its KV part is refused, naming the largest ctx that fits', () => {
    const input = { devices: [0, 1], tensorSplit: [0.5, 0.5], modelBytes: 4 * GIB, kvBytesPerToken: KV_BYTES_PER_TOKEN, contextPerSlot: 8192, slots: 4 };
    const plan = planDeviceBudget(input);
    const memory = [
      { device: 0, totalBytes: 24 * GIB, freeBytes: 24 * GIB },
      { device: 1, totalBytes: 4 * GIB, freeBytes: 4 * GIB },
    ];
    // GPU 1 needs 2 GiB weights + 2 GiB KV + 512 MiB: over its 4 GiB. 4 GiB − 2 GiB − 512 MiB = 1.5 GiB of KV = ctx 6144.
    const refusalWith = (gpu1: { totalBytes: number; freeBytes: number }): (Error & { code?: string; kind?: string; retriable?: boolean }) | undefined => {
      try {
        checkDeviceBudget(plan, [memory[0] ?? { device: 0, totalBytes: 0, freeBytes: 0 }, { device: 1, ...gpu1 }], input);
        return undefined;
      } catch (error) {
        return error as Error;
      }
    };
    const refusal = refusalWith(memory[1] ?? { totalBytes: 0, freeBytes: 0 });
    expect(refusal).toEqual(expect.objectContaining({ kind: 'insufficient_vram', retriable: false }));
    expect(refusal?.message).toMatch(/^GPU 1 cannot hold its share: share 0\.50 needs 4608 MiB .*KV cache 2048 MiB \(ctx 8192 × 4 slots\).*the largest ctx that fits is 6144$/);
    // Enough in all but not free now (another replica of the pool on this host, or another process): retried with backoff.
    expect(refusalWith({ totalBytes: 8 * GIB, freeBytes: 3 * GIB })).toEqual(expect.objectContaining({ code: 'POOL_UNREADY', kind: 'insufficient_vram', retriable: true }));
    expect(refusalWith({ totalBytes: 8 * GIB, freeBytes: 5 * GIB })).toBeUndefined();
  });

  test('ORCH-3052 ORCH-3027: a launch reads KV bytes per token from the GGUF and free VRAM from nvidia-smi, logs the ratios the engine is given, and refuses the GPU that overflows', async () => {
    const model = await llamaHeader();
    fakeNvidiaSmi([
      { index: 0, name: 'NVIDIA RTX 4090', totalMib: 24_564, usedMib: 0 },
      { index: 1, name: 'NVIDIA T400', totalMib: 1_536, usedMib: 0 },
    ]);
    const progress = { enter: () => undefined };
    const tooSmall = launcherFor([0, 1], { extra: { tensor_split: [0.67, 0.33] }, model });
    await tooSmall.launcher.checkHost();
    const refusal = await tooSmall.launcher.launch(progress, 'm').then(() => undefined, (error: unknown) => error as Error & { kind?: string });
    // 0.33 of 4 GiB of KV is 1352 MiB, plus 512 MiB: over the 1.5 GiB card.
    expect(refusal).toEqual(expect.objectContaining({ kind: 'insufficient_vram' }));
    expect(refusal?.message).toMatch(/^GPU 1 cannot hold its share: share 0\.33 .*the largest ctx that fits is \d+$/);
    const budget = tooSmall.logs.lines().find((line) => line['msg'] === 'VRAM budget per device');
    expect(budget).toEqual(expect.objectContaining({ tensor_split: '0.67,0.33', ctx: 8192, slots: 4, kv_bytes_per_token: KV_BYTES_PER_TOKEN }));
    expect((budget?.['vram_budget'] as Record<string, { share: number; kv_bytes: number }>)['gpu1']).toEqual(expect.objectContaining({ share: 0.33, kv_bytes: Math.ceil(4 * GIB * 0.33) }));

    // A smaller ctx fits: the launch gets past the checks and starts the engine with those very ratios.
    const fits = launcherFor([0, 1], { extra: { tensor_split: [0.67, 0.33], ctx: 1024 }, model });
    await fits.launcher.checkHost();
    await expect(fits.launcher.launch(progress, 'm')).rejects.toMatchObject({ kind: 'engine_exit' });
    const started = fits.logs.lines().find((line) => line['msg'] === 'llama-server started');
    expect(started).toEqual(expect.objectContaining({ tensor_split: '0.67,0.33', cuda_visible_devices: '0,1' }));
    expect(started?.['args']).toEqual(expect.arrayContaining(['--split-mode', 'layer', '--tensor-split', '0.67,0.33']));
  });
});

describe('replica sets never share the pool queue (ORCH-3046, OC-CORE-1031)', () => {
  const self = { replicaId: 'p-r2', engineVersion: 'b2', replicaSet: 'bbbb', replicaSetKey: 'llamacpp|m|Q4|ctx2048|b2|sampler-v1' };
  const member = (replicaId: string, engineVersion: string, replicaSet: string | undefined): PoolQueueMember => ({ replicaId, engineVersion, replicaSet });

  test('ORCH-3046: a replica of another set stays off the pool queue (standby); alone, or among its own set, it polls', () => {
    expect(decideMembership({ self, pollers: [], requireSameEngineVersion: false, polling: false })).toEqual({ kind: 'poll' });
    expect(decideMembership({ self, pollers: [member('p-r0', 'b2', 'bbbb'), member('p-r2', 'b1', 'aaaa')], requireSameEngineVersion: true, polling: false })).toEqual({ kind: 'poll' });
    expect(decideMembership({ self, pollers: [member('p-r0', 'b1', 'aaaa')], requireSameEngineVersion: false, polling: false })).toEqual({ kind: 'standby', servedBy: 'p-r0 (engine_version b1)' });
  });

  test('ORCH-3046 OC-CORE-1031: require_same_engine_version refuses a replica whose engine_version differs from the pool queue\'s', () => {
    const verdict = decideMembership({ self, pollers: [member('p-r0', 'b1', 'aaaa')], requireSameEngineVersion: true, polling: false });
    expect(verdict.kind).toBe('refuse');
    if (verdict.kind !== 'refuse') return;
    expect(verdict.failure).toEqual(expect.objectContaining({ code: 'POOL_UNAVAILABLE', kind: 'replica_set_mismatch', retriable: true }));
    expect(verdict.failure.message).toContain('engine_version b2');
    // The same engine build with another ctx is another set, not another version: a standby, not a refusal.
    expect(decideMembership({ self, pollers: [member('p-r0', 'b2', 'aaaa')], requireSameEngineVersion: true, polling: false }).kind).toBe('standby');
    // A poller of an older release carries no set digest: its engine_version decides.
    expect(decideMembership({ self, pollers: [member('p-r0', 'b1', undefined)], requireSameEngineVersion: true, polling: false }).kind).toBe('refuse');
  });

  test('ORCH-3046: two sets that joined at once: the larger keeps the queue, ties to the smaller digest, the same answer on both sides', () => {
    const other = { ...self, replicaId: 'p-r0', engineVersion: 'b1', replicaSet: 'aaaa' };
    const both = [member('p-r0', 'b1', 'aaaa'), member('p-r2', 'b2', 'bbbb')];
    expect(decideMembership({ self, pollers: both, requireSameEngineVersion: false, polling: true }).kind).toBe('refuse');
    expect(decideMembership({ self: other, pollers: both, requireSameEngineVersion: false, polling: true }).kind).toBe('poll');
    const mine = [...both, member('p-r3', 'b2', 'bbbb')];
    expect(decideMembership({ self, pollers: mine, requireSameEngineVersion: false, polling: true }).kind).toBe('poll');
    expect(decideMembership({ self: other, pollers: mine, requireSameEngineVersion: false, polling: true }).kind).toBe('refuse');
  });

  test('ORCH-3046: the pool queue poller identity carries the set digest and still parses the older form', () => {
    const identity = formatReplicaIdentity({ poolId: 'p', replicaId: 'p-r0', engineVersion: 'mock-0.1.0', mockEngine: true, replicaSet: '0123456789ab' });
    expect(identity).toBe('llama-orch/p/p-r0/mock-0.1.0/MOCK-ENGINE/set-0123456789ab');
    expect(parseReplicaIdentity(identity)).toEqual({ poolId: 'p', replicaId: 'p-r0', engineVersion: 'mock-0.1.0', mockEngine: true, replicaSet: '0123456789ab' });
    expect(parseReplicaIdentity('llama-orch/p/p-r0/b1/lane')).toEqual({ poolId: 'p', replicaId: 'p-r0', engineVersion: 'b1', mockEngine: false });
  });
});

describe('placement keeps to the set that serves the pool queue (ORCH-3046)', () => {
  test('ORCH-3046 ORCH-3008: standby replicas are never placement candidates, even when their set has more Ready replicas', () => {
    const serving = replicaStatusFixture('p-r0', { replica_set_key: 'set-a', slots_total: 1 });
    const standbys = ['p-r1', 'p-r2'].map((id) => replicaStatusFixture(id, { replica_set_key: 'set-b', slots_total: 1, pool_queue_standby: true }));
    expect(placementCandidates([serving, ...standbys])?.candidates.map((candidate) => candidate.replicaId)).toEqual(['p-r0']);
    // Nor through session affinity: the session's replica became a standby, so it is placed on the serving set.
    expect(placementCandidates([serving, ...standbys], 'p-r1')?.replicaSetKey).toBe('set-a');
  });
});
