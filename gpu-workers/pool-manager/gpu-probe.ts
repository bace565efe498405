import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { ErrorCode } from '../../core/errors';
import { ReplicaFailure } from './replica-failure';

export interface GpuProbeResult {
  readonly nvidiaGpus: number;
  readonly detail: string;
  /** The GPU indices nvidia-smi lists (what a device mask may name); absent → 0 … nvidiaGpus − 1. */
  readonly indices?: readonly number[] | undefined;
}

/**
 * Lists NVIDIA GPUs with `nvidia-smi -L` (`GPU 0: <name> (UUID: …)`); none when the tool is missing or fails.
 * `command` is the tool's path (tests give a script that answers as nvidia-smi does).
 */
export async function probeNvidiaGpus(command = 'nvidia-smi'): Promise<GpuProbeResult> {
  try {
    const { stdout } = await promisify(execFile)(command, ['-L'], { timeout: 10_000, encoding: 'utf8' });
    const gpus = stdout.split('\n').map((line) => line.trim()).filter((line) => /^GPU \d+:/.test(line));
    const indices = gpus.map((line) => Number(/^GPU (\d+):/.exec(line)?.[1]));
    return { nvidiaGpus: gpus.length, detail: gpus.join('; ') || 'nvidia-smi lists no GPU', indices };
  } catch (error) {
    return { nvidiaGpus: 0, detail: `nvidia-smi unavailable: ${error instanceof Error ? error.message.split('\n')[0] ?? '' : String(error)}` };
  }
}

/**
 * `nvidia-smi --query-gpu=index,ecc.errors.uncorrected.volatile.total` lines → count by device. A GPU
 * without ECC (or with it off) answers `[N/A]` and is left out.
 */
export function parseNvidiaSmiEcc(stdout: string): ReadonlyMap<number, number> {
  const counts = new Map<number, number>();
  for (const line of stdout.split('\n')) {
    const match = /^\s*(\d+)\s*,\s*(\d+)\s*$/.exec(line);
    if (match) counts.set(Number(match[1]), Number(match[2]));
  }
  return counts;
}

/**
 * The driver's volatile uncorrected ECC counts of `devices` (ORCH-3053); undefined when nvidia-smi is
 * missing, fails, or does not answer within `timeoutMs` (a wedged driver often hangs it).
 */
export async function readUncorrectedEccCounts(devices: readonly number[], timeoutMs = 3_000): Promise<ReadonlyMap<number, number> | undefined> {
  try {
    const { stdout } = await promisify(execFile)(
      'nvidia-smi',
      ['--query-gpu=index,ecc.errors.uncorrected.volatile.total', '--format=csv,noheader,nounits', '-i', devices.join(',')],
      { timeout: timeoutMs, encoding: 'utf8' },
    );
    return parseNvidiaSmiEcc(stdout);
  } catch {
    return undefined;
  }
}

/** How far each device's count rose from `before` to `after`; undefined when either read failed. */
export function eccIncrease(before: ReadonlyMap<number, number> | undefined, after: ReadonlyMap<number, number> | undefined): ReadonlyMap<number, number> | undefined {
  if (before === undefined || after === undefined) return undefined;
  const increase = new Map<number, number>();
  for (const [device, count] of after) {
    const start = before.get(device);
    if (start !== undefined) increase.set(device, Math.max(0, count - start));
  }
  return increase;
}

export interface InferenceHostDecision {
  /** True when inference runs on the CPU under the development override. */
  readonly cpuInference: boolean;
}

/**
 * ORCH-1101 / OC-POOL-3012: inference needs an NVIDIA GPU and an engine built for it. Without both,
 * the replica refuses to serve (POOL_UNAVAILABLE, not retried: the host will not grow a GPU) unless
 * the development override allows CPU inference.
 */
export function decideInferenceHost(gpu: GpuProbeResult, engineUsesCuda: boolean, allowCpuInference: boolean): InferenceHostDecision {
  if (gpu.nvidiaGpus > 0 && engineUsesCuda) return { cpuInference: false };
  if (allowCpuInference) return { cpuInference: true };
  const why = gpu.nvidiaGpus === 0 ? `no NVIDIA GPU on this host (${gpu.detail})` : 'the engine build is CPU-only (it would not use the GPUs)';
  throw new ReplicaFailure(
    ErrorCode.POOL_UNAVAILABLE,
    'no_gpu',
    `refusing to serve inference: ${why} (ORCH-1101); set dev.allow_cpu_inference or ORCH_DEV_ALLOW_CPU_INFERENCE=1 for development`,
    false,
  );
}

/**
 * ORCH-1101 / ORCH-3011: every GPU a device mask names must exist on this host. CUDA_VISIBLE_DEVICES naming
 * a missing GPU leaves the engine no device, and llama.cpp then runs on the CPU without a word: refused
 * instead, not retried (the host will not grow the GPU), naming the index and the GPUs found.
 */
export function checkDeviceMask(devices: readonly number[], gpu: GpuProbeResult): void {
  const present = new Set(gpu.indices ?? Array.from({ length: gpu.nvidiaGpus }, (_unused, index) => index));
  const missing = devices.filter((device) => !present.has(device));
  if (missing.length === 0) return;
  throw new ReplicaFailure(
    ErrorCode.POOL_UNAVAILABLE,
    'device_mask_invalid',
    `the pool's device mask [${devices.join(', ')}] names GPU ${missing.join(', ')}, which this host does not have ` +
      `(nvidia-smi lists ${gpu.nvidiaGpus} GPU${gpu.nvidiaGpus === 1 ? '' : 's'}: ${gpu.detail}); the engine would run on the CPU (ORCH-1101, ORCH-3011)`,
    false,
  );
}
