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
  /**
   * What the driver says: how far each device's volatile uncorrected ECC count rose between the engine's
   * start and its exit (`nvidia-smi`), by device index; absent where it cannot be read (no nvidia-smi, no
   * ECC on the GPU, a driver too wedged to answer).
   */
  readonly eccUncorrectedIncrease?: ReadonlyMap<number, number> | undefined;
}

/** Below this share of free host memory, a SIGKILL is read as the kernel's OOM killer. */
const HOST_OOM_FREE_RATIO = 0.05;

const VRAM_OOM = /cudaMalloc failed|CUDA error: out of memory|cudaErrorMemoryAllocation|failed to allocate CUDA[0-9]* buffer|ggml_backend_cuda_buffer_type_alloc_buffer/i;
const HOST_OOM = /std::bad_alloc|failed to allocate CPU buffer|Cannot allocate memory/i;
const DRIVER_RESET = /\bXid\b|NVRM|GPU has fallen off the bus|CUDA driver version is insufficient|cudaErrorDevicesUnavailable|unspecified launch failure|CUDA error: (an illegal|unknown error|the launch timed out)|driver shutting down/i;
/** CUDA's own words for a memory error the hardware caught (cudaErrorECCUncorrectable, …). */
const ECC_TEXT = /uncorrectable ECC error|cudaErrorECCUncorrectable|\bECC error|double[- ]bit ECC|ECC page retirement/i;
/**
 * NVIDIA Xids that are memory (ECC) faults rather than a driver or bus failure: 48 double-bit ECC, 63/64
 * page retirement or row remapping (and its failure), 92 high single-bit ECC rate, 94 contained and 95
 * uncontained ECC error. Any other Xid (79 fallen off the bus, 119/120 GSP, 13/31/43 …) is a driver reset.
 */
const ECC_XIDS = new Set([48, 63, 64, 92, 94, 95]);
const XID = /\bXid\b(?:\s*\([^)]*\))?\s*:?\s*(\d+)/gi;

function eccEvidence(exit: EngineExit): string | undefined {
  const xids = [...exit.output.matchAll(XID)].map((match) => Number(match[1])).filter((xid) => ECC_XIDS.has(xid));
  if (xids.length > 0) return `ECC error (Xid ${[...new Set(xids)].join(', ')})`;
  if (ECC_TEXT.test(exit.output)) return 'uncorrectable ECC error reported by CUDA';
  const rose = [...(exit.eccUncorrectedIncrease ?? new Map<number, number>())].filter(([, increase]) => increase > 0);
  if (rose.length > 0) return `uncorrected ECC errors rose while it ran (${rose.map(([device, increase]) => `GPU ${device}: +${increase}`).join(', ')}, nvidia-smi)`;
  return undefined;
}

/**
 * Names the cause of an engine exit from its output, how it died and what the driver says (ORCH-3039,
 * ORCH-3053): VRAM OOM, host OOM, ECC errors and driver resets are distinct kinds; the code is
 * WORKER_RESET for all of them. ECC is checked before the driver reset it usually comes with.
 */
export function classifyEngineExit(exit: EngineExit): ReplicaFailure {
  const how = exit.signal !== null ? `killed by ${exit.signal}` : `exited with code ${String(exit.exitCode)}`;
  const lastLines = lastMeaningfulLines(exit.output);
  const describe = (what: string): string => `llama-server ${how}: ${what}${lastLines ? ` — ${lastLines}` : ''}`;
  if (VRAM_OOM.test(exit.output)) return new ReplicaFailure(ErrorCode.WORKER_RESET, 'vram_oom', describe('out of GPU memory (VRAM)'));
  const ecc = eccEvidence(exit);
  if (ecc !== undefined) return new ReplicaFailure(ErrorCode.WORKER_RESET, 'ecc_error', describe(`GPU memory ECC error: ${ecc}`));
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
