import { execFile } from 'node:child_process';
import { freemem, totalmem } from 'node:os';
import { promisify } from 'node:util';
import { ErrorCode } from '../../core/errors';
import { ReplicaFailure } from './replica-failure';

export interface DeviceMemory {
  readonly device: number;
  readonly totalBytes: number;
  readonly freeBytes: number;
}

/** Where free memory is read from; tests inject one. */
export interface MemoryProbe {
  hostFreeBytes(): number;
  hostTotalBytes(): number;
  /** Free VRAM of the given physical devices; undefined when nvidia-smi is absent. */
  deviceMemory(devices: readonly number[]): Promise<readonly DeviceMemory[] | undefined>;
}

export interface HeadroomRequirement {
  readonly hostRamBytes: number;
  /** Per device; undefined when the engine does not use a GPU. */
  readonly vramBytes?: number | undefined;
  readonly devices: readonly number[];
}

const MIB = 1024 * 1024;

/** Defaults when config does not say: the model is mapped into host memory, or uploaded to VRAM with KV cache. */
export function defaultHeadroom(modelBytes: number, usesGpu: boolean): { hostRamBytes: number; vramBytes: number | undefined } {
  return {
    hostRamBytes: modelBytes + 256 * MIB,
    vramBytes: usesGpu ? Math.ceil(modelBytes * 1.2) + 512 * MIB : undefined,
  };
}

/**
 * Fails fast before a load that cannot fit (ORCH-3003, OC-POOL-3002): host RAM first, then VRAM on
 * every device in the mask. A failure leaves the replica Unready; the restart policy retries later.
 */
export async function checkHeadroom(requirement: HeadroomRequirement, probe: MemoryProbe): Promise<void> {
  const hostFree = probe.hostFreeBytes();
  if (hostFree < requirement.hostRamBytes) {
    throw new ReplicaFailure(
      ErrorCode.POOL_UNREADY,
      'insufficient_host_ram',
      `insufficient host RAM headroom: need ${formatMib(requirement.hostRamBytes)}, ${formatMib(hostFree)} free`,
    );
  }
  if (requirement.vramBytes === undefined) return;
  const devices = await probe.deviceMemory(requirement.devices);
  if (devices === undefined) return;
  for (const device of devices) {
    if (device.freeBytes < requirement.vramBytes) {
      throw new ReplicaFailure(
        ErrorCode.POOL_UNREADY,
        'insufficient_vram',
        `insufficient VRAM headroom on GPU ${device.device}: need ${formatMib(requirement.vramBytes)}, ${formatMib(device.freeBytes)} free of ${formatMib(device.totalBytes)}`,
      );
    }
  }
}

function formatMib(bytes: number): string {
  return `${Math.round(bytes / MIB)} MiB`;
}

/** `nvidia-smi --query-gpu=index,memory.total,memory.used --format=csv,noheader,nounits` lines, in MiB. */
export function parseNvidiaSmiMemory(text: string): DeviceMemory[] {
  return text
    .split('\n')
    .map((line) => line.split(',').map((field) => Number(field.trim())))
    .filter((fields) => fields.length === 3 && fields.every((field) => Number.isFinite(field)))
    .map(([device = 0, totalMib = 0, usedMib = 0]) => ({ device, totalBytes: totalMib * MIB, freeBytes: (totalMib - usedMib) * MIB }));
}

/** Host memory from the OS, VRAM from `nvidiaSmi` (a path; tests give a script that answers as nvidia-smi does). */
export function nvidiaSmiMemoryProbe(nvidiaSmi = 'nvidia-smi'): MemoryProbe {
  return {
    // libuv reads MemAvailable on Linux: page cache that can be dropped counts as free.
    hostFreeBytes: () => freemem(),
    hostTotalBytes: () => totalmem(),
    deviceMemory: async (devices) => {
      try {
        const { stdout } = await promisify(execFile)(
          nvidiaSmi,
          ['--query-gpu=index,memory.total,memory.used', '--format=csv,noheader,nounits', '-i', devices.join(',')],
          { timeout: 10_000, encoding: 'utf8' },
        );
        return parseNvidiaSmiMemory(stdout);
      } catch {
        return undefined;
      }
    },
  };
}

export const systemMemoryProbe: MemoryProbe = nvidiaSmiMemoryProbe();
