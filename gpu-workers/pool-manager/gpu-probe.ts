import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { ErrorCode } from '../../core/errors';
import { ReplicaFailure } from './replica-failure';

export interface GpuProbeResult {
  readonly nvidiaGpus: number;
  readonly detail: string;
}

/** Counts NVIDIA GPUs with `nvidia-smi -L`; none when the tool is missing or fails. */
export async function probeNvidiaGpus(): Promise<GpuProbeResult> {
  try {
    const { stdout } = await promisify(execFile)('nvidia-smi', ['-L'], { timeout: 10_000, encoding: 'utf8' });
    const gpus = stdout.split('\n').filter((line) => /^GPU \d+:/.test(line.trim()));
    return { nvidiaGpus: gpus.length, detail: gpus.join('; ') || 'nvidia-smi lists no GPU' };
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
  const why = gpu.nvidiaGpus === 0 ? `no NVIDIA GPU on this host (${gpu.detail})` : 'the llama-server build is CPU-only';
  throw new ReplicaFailure(
    ErrorCode.POOL_UNAVAILABLE,
    'no_gpu',
    `refusing to serve inference: ${why} (ORCH-1101); set dev.allow_cpu_inference or ORCH_DEV_ALLOW_CPU_INFERENCE=1 for development`,
    false,
  );
}
