import { ErrorCode } from '../../core/errors';
import { ReplicaFailure } from './replica-failure';

export interface EngineExit {
  readonly exitCode: number | null;
  readonly signal: NodeJS.Signals | null;
  /** The tail of the engine's stdout and stderr. */
  readonly output: string;
  /** Free / total host memory when the exit was seen, for telling the kernel OOM killer apart. */
  readonly hostFreeBytes: number;
  readonly hostTotalBytes: number;
}

/** Below this share of free host memory, a SIGKILL is read as the kernel's OOM killer. */
const HOST_OOM_FREE_RATIO = 0.05;

const VRAM_OOM = /cudaMalloc failed|CUDA error: out of memory|cudaErrorMemoryAllocation|failed to allocate CUDA[0-9]* buffer|ggml_backend_cuda_buffer_type_alloc_buffer/i;
const HOST_OOM = /std::bad_alloc|failed to allocate CPU buffer|Cannot allocate memory/i;
const DRIVER_RESET = /\bXid\b|NVRM|GPU has fallen off the bus|CUDA driver version is insufficient|cudaErrorDevicesUnavailable|unspecified launch failure|CUDA error: (an illegal|unknown error|the launch timed out)|driver shutting down/i;

/**
 * Names the cause of an engine exit from its output and how it died (ORCH-3039, ORCH-3053): VRAM
 * OOM, host OOM and driver resets are distinct kinds; the code is WORKER_RESET for all of them.
 */
export function classifyEngineExit(exit: EngineExit): ReplicaFailure {
  const how = exit.signal !== null ? `killed by ${exit.signal}` : `exited with code ${String(exit.exitCode)}`;
  const lastLines = lastMeaningfulLines(exit.output);
  const describe = (what: string): string => `llama-server ${how}: ${what}${lastLines ? ` — ${lastLines}` : ''}`;
  if (VRAM_OOM.test(exit.output)) return new ReplicaFailure(ErrorCode.WORKER_RESET, 'vram_oom', describe('out of GPU memory (VRAM)'));
  if (DRIVER_RESET.test(exit.output)) return new ReplicaFailure(ErrorCode.WORKER_RESET, 'driver_reset', describe('GPU driver or device fault'));
  if (HOST_OOM.test(exit.output)) return new ReplicaFailure(ErrorCode.WORKER_RESET, 'host_oom', describe('out of host memory'));
  if (exit.signal === 'SIGKILL' && exit.hostTotalBytes > 0 && exit.hostFreeBytes / exit.hostTotalBytes < HOST_OOM_FREE_RATIO) {
    return new ReplicaFailure(ErrorCode.WORKER_RESET, 'host_oom', describe('killed while host memory was nearly exhausted (kernel OOM killer)'));
  }
  return new ReplicaFailure(ErrorCode.WORKER_RESET, 'engine_exit', describe('engine process ended'));
}

/** The last few non-empty lines, enough to name a cause in health without shipping the whole log. */
function lastMeaningfulLines(output: string, count = 3, maxChars = 400): string {
  const lines = output.split('\n').map((line) => line.trim()).filter((line) => line.length > 0);
  return lines.slice(-count).join(' | ').slice(-maxChars);
}
