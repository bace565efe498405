import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { freemem, totalmem } from 'node:os';
import type { OrchMetrics } from './metrics';

const NVIDIA_SMI_TIMEOUT_MS = 2_000;
/** Scrapes within this long reuse the last nvidia-smi answer: one process per scrape would be wasteful. */
const GPU_SAMPLE_TTL_MS = 5_000;
const MIB = 1024 * 1024;

export interface GpuSample {
  readonly device: string;
  readonly utilizationPercent: number;
  readonly usedBytes: number;
  readonly totalBytes: number;
}

/** Parses `nvidia-smi --query-gpu=index,utilization.gpu,memory.used,memory.total --format=csv,noheader,nounits`. */
export function parseNvidiaSmi(output: string): GpuSample[] {
  return output
    .split('\n')
    .map((line) => line.split(',').map((field) => field.trim()))
    .filter((fields) => fields.length === 4 && fields.every((field) => /^\d+(\.\d+)?$/.test(field)))
    .map(([device, utilization, used, total]) => ({
      device: device ?? '',
      utilizationPercent: Number(utilization),
      usedBytes: Number(used) * MIB,
      totalBytes: Number(total) * MIB,
    }));
}

/**
 * GPU, VRAM and RAM utilization (ORCH-3028) of the host the gateway runs on: host RAM always (MemAvailable
 * from /proc/meminfo where there is one), GPUs through nvidia-smi where it is installed. Pool workers on
 * other hosts are measured by their own node exporters (docs/operations.md).
 */
export class HostResources {
  private gpuSamples: GpuSample[] = [];
  private sampledAt = -Infinity;
  private nvidiaSmiMissing = false;

  register(metrics: OrchMetrics): void {
    metrics.addCollector(async () => {
      const total = totalmem();
      metrics.set('hostMemoryTotal', {}, total);
      metrics.set('hostMemoryUsed', {}, total - availableMemory());
      for (const gpu of await this.gpus()) {
        metrics.set('gpuUtilization', { device: gpu.device }, gpu.utilizationPercent);
        metrics.set('vramUsed', { device: gpu.device }, gpu.usedBytes);
        metrics.set('vramTotal', { device: gpu.device }, gpu.totalBytes);
      }
    });
  }

  private async gpus(): Promise<GpuSample[]> {
    if (this.nvidiaSmiMissing || performance.now() - this.sampledAt < GPU_SAMPLE_TTL_MS) return this.gpuSamples;
    this.sampledAt = performance.now();
    this.gpuSamples = await new Promise<GpuSample[]>((resolve) => {
      execFile(
        'nvidia-smi',
        ['--query-gpu=index,utilization.gpu,memory.used,memory.total', '--format=csv,noheader,nounits'],
        { timeout: NVIDIA_SMI_TIMEOUT_MS },
        (error, stdout) => {
          if ((error as NodeJS.ErrnoException | null)?.code === 'ENOENT') this.nvidiaSmiMissing = true;
          resolve(error ? [] : parseNvidiaSmi(stdout));
        },
      );
    });
    return this.gpuSamples;
  }
}

function availableMemory(): number {
  try {
    const match = /^MemAvailable:\s+(\d+) kB$/m.exec(readFileSync('/proc/meminfo', 'utf8'));
    if (match?.[1]) return Number(match[1]) * 1024;
  } catch {
    // Not Linux: os.freemem() counts page cache as used, which overstates use but is all there is.
  }
  return freemem();
}
