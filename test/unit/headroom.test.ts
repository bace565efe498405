import { decideInferenceHost } from '../../gpu-workers/pool-manager/gpu-probe';
import { checkHeadroom, defaultHeadroom, parseNvidiaSmiMemory } from '../../gpu-workers/pool-manager/headroom';
import type { MemoryProbe } from '../../gpu-workers/pool-manager/headroom';
import { llamaServerArguments } from '../../gpu-workers/pool-manager/llama-server-process';

const MIB = 2 ** 20;
const probe = (hostFreeMib: number, vramFreeMib?: number): MemoryProbe => ({
  hostFreeBytes: () => hostFreeMib * MIB,
  hostTotalBytes: () => 4 * hostFreeMib * MIB,
  deviceMemory: (devices) => Promise.resolve(vramFreeMib === undefined ? undefined : devices.map((device) => ({ device, totalBytes: 80_000 * MIB, freeBytes: vramFreeMib * MIB }))),
});

test('nvidia-smi memory lines parse into bytes per device', () => {
  expect(parseNvidiaSmiMemory('0, 81559, 1024\n1, 81559, 81000\n')).toEqual([
    { device: 0, totalBytes: 81_559 * MIB, freeBytes: 80_535 * MIB },
    { device: 1, totalBytes: 81_559 * MIB, freeBytes: 559 * MIB },
  ]);
});

test('ORCH-3003: too little host RAM fails fast with POOL_UNREADY / insufficient_host_ram', async () => {
  await expect(checkHeadroom({ hostRamBytes: 1_000 * MIB, devices: [0] }, probe(500))).rejects.toMatchObject({
    code: 'POOL_UNREADY',
    kind: 'insufficient_host_ram',
    message: 'insufficient host RAM headroom: need 1000 MiB, 500 MiB free',
  });
  await expect(checkHeadroom({ hostRamBytes: 100 * MIB, devices: [0] }, probe(500))).resolves.toBeUndefined();
});

test('ORCH-3003: too little VRAM on any device of the mask fails fast; no nvidia-smi means no VRAM check', async () => {
  await expect(checkHeadroom({ hostRamBytes: 0, vramBytes: 2_000 * MIB, devices: [0, 1] }, probe(500, 1_000))).rejects.toMatchObject({ kind: 'insufficient_vram' });
  await expect(checkHeadroom({ hostRamBytes: 0, vramBytes: 2_000 * MIB, devices: [0] }, probe(500))).resolves.toBeUndefined();
});

test('default headroom: the model plus a margin in host RAM; VRAM only when the engine uses a GPU', () => {
  expect(defaultHeadroom(100 * MIB, false)).toEqual({ hostRamBytes: 356 * MIB, vramBytes: undefined });
  expect(defaultHeadroom(100 * MIB, true).vramBytes).toBe(632 * MIB);
});

test('ORCH-1101 OC-POOL-3012: inference needs an NVIDIA GPU and a CUDA engine, unless the development override is set', () => {
  const gpu = { nvidiaGpus: 1, detail: 'GPU 0: H100' };
  const none = { nvidiaGpus: 0, detail: 'nvidia-smi unavailable' };
  expect(decideInferenceHost(gpu, true, false)).toEqual({ cpuInference: false });
  let refusal: unknown;
  try {
    decideInferenceHost(none, false, false);
  } catch (error) {
    refusal = error;
  }
  expect(refusal).toEqual(expect.objectContaining({ code: 'POOL_UNAVAILABLE', kind: 'no_gpu', retriable: false }));
  expect(() => decideInferenceHost(gpu, false, false)).toThrow(/CPU-only/);
  expect(decideInferenceHost(none, false, true)).toEqual({ cpuInference: true });
});

test('OC-TEST-7002: one slot gets the deterministic profile; optional flags only when the build lists them', () => {
  const launch = { modelPath: '/m.gguf', slots: 1, contextPerSlot: 512, threads: 2, useGpu: false, extraArgs: ['--foo'], devices: [0] };
  const all = new Set(['--slots', '--no-webui', '--n-gpu-layers', '--fit', '--cache-ram', '--no-cont-batching']);
  expect(llamaServerArguments(launch, all)).toEqual([
    '-m', '/m.gguf', '-np', '1', '-c', '512', '--metrics', '-t', '2',
    '--slots', '--no-webui', '--n-gpu-layers', '0', '--fit', 'off', '--cache-ram', '0', '--no-cont-batching', '--foo',
  ]);
  // Context is per slot: four slots get four times the context; continuous batching stays on.
  const four = llamaServerArguments({ ...launch, slots: 4, threads: undefined, extraArgs: [] }, new Set(['--no-cont-batching']));
  expect(four).toEqual(['-m', '/m.gguf', '-np', '4', '-c', '2048', '--metrics']);
});

test('ORCH-2005: --slot-save-path (needed by llama-server\'s slot erase) is passed when given and the build knows it', () => {
  const launch = { modelPath: '/m.gguf', slots: 2, contextPerSlot: 512, threads: undefined, useGpu: false, extraArgs: [], slotSavePath: '/data/slots/p-r0', devices: [0] };
  expect(llamaServerArguments(launch, new Set(['--slot-save-path']))).toEqual(['-m', '/m.gguf', '-np', '2', '-c', '1024', '--metrics', '--slot-save-path', '/data/slots/p-r0']);
  expect(llamaServerArguments(launch, new Set())).not.toContain('--slot-save-path');
});

test('ORCH-3012: a multi-device pool splits only by configured ratios; without them it runs on the mask\'s first device alone', () => {
  const launch = { modelPath: '/m.gguf', slots: 1, contextPerSlot: 512, threads: undefined, useGpu: true, extraArgs: [], devices: [2, 3] };
  const base = ['-m', '/m.gguf', '-np', '1', '-c', '512', '--metrics'];
  // Not listed by --help, still passed: a build that cannot split as configured must fail to start.
  expect(llamaServerArguments({ ...launch, tensorSplit: [0.67, 0.33] }, new Set())).toEqual([...base, '--split-mode', 'layer', '--tensor-split', '0.67,0.33']);
  // Devices are renumbered from 0 under CUDA_VISIBLE_DEVICES=2,3: 0 is physical device 2.
  expect(llamaServerArguments(launch, new Set())).toEqual([...base, '--split-mode', 'none', '--main-gpu', '0']);
  expect(llamaServerArguments({ ...launch, tensorSplit: null }, new Set())).toEqual([...base, '--split-mode', 'none', '--main-gpu', '0']);
  // One device: nothing to split, no split flags.
  const single = llamaServerArguments({ ...launch, devices: [1], tensorSplit: [1] }, new Set());
  expect(single).toEqual(base);
});
