import { ErrorCode } from '../../core/errors';
import { tensorSplitOf } from '../../core/tensor-split';
import type { DeviceMemory } from './headroom';
import { ReplicaFailure } from './replica-failure';

const MIB = 1024 * 1024;
/** Compute buffers and the CUDA context beside the weights and the KV cache, per device that holds a share. */
export const DEVICE_OVERHEAD_BYTES = 512 * MIB;

/** What one device of the mask holds: its share of the layers, hence of the weights and of the KV cache. */
export interface DeviceShare {
  readonly device: number;
  /** 0…1; the shares of a mask add up to 1. */
  readonly share: number;
  readonly weightsBytes: number;
  readonly kvBytes: number;
  /** Free VRAM the device needs before the load: weights + KV + overhead, or the configured figure if larger. */
  readonly needBytes: number;
}

export interface DeviceBudgetInput {
  readonly devices: readonly number[];
  /** The pool's `tensor_split` as the engine is given it (ORCH-3012); absent → the whole model on the mask's first device. */
  readonly tensorSplit?: readonly number[] | null | undefined;
  readonly modelBytes: number;
  /** KV bytes one token takes (GGUF metadata, f16 K and V); undefined → the KV part cannot be counted. */
  readonly kvBytesPerToken: number | undefined;
  /** Tokens per slot (the pool's `ctx`) and slots: the KV cache the engine allocates at load is ctx × slots. */
  readonly contextPerSlot: number;
  readonly slots: number;
  /** The configured `vram_headroom_bytes`: a floor per device, never below what the shares need. */
  readonly configuredBytes?: number | null | undefined;
}

/**
 * ORCH-3052 / OC-POOL-3021: how much of the model and of its KV cache each device of the mask holds. With
 * ratios, llama.cpp's layer split puts each layer's weights and KV cache on one device in proportion to them
 * (llama.cpp normalizes the ratios); without, device 0 of the mask holds everything (`--split-mode none`).
 */
export function planDeviceBudget(input: DeviceBudgetInput): DeviceShare[] {
  const split = tensorSplitOf(input.devices, input.tensorSplit);
  const total = split?.reduce((sum, ratio) => sum + ratio, 0) ?? 1;
  const kvTotal = (input.kvBytesPerToken ?? 0) * input.contextPerSlot * input.slots;
  const shares = split ? input.devices.map((device, index) => ({ device, share: (split[index] ?? 0) / total })) : [{ device: input.devices[0] ?? 0, share: 1 }];
  return shares.map(({ device, share }) => {
    const weightsBytes = Math.ceil(input.modelBytes * share);
    const kvBytes = Math.ceil(kvTotal * share);
    return { device, share, weightsBytes, kvBytes, needBytes: Math.max(input.configuredBytes ?? 0, weightsBytes + kvBytes + DEVICE_OVERHEAD_BYTES) };
  });
}

/**
 * Refuses a load that would overflow a device (the smallest GPU's share first of all): against its total
 * VRAM, not retried since waiting cannot help; against its free VRAM now (another replica of the pool on this
 * host, which shares the mask, or any other process may hold it), retried with backoff. Replicas of one pool
 * may run on several hosts, so the total is checked for this replica alone. The message names the device, its
 * share, what the KV cache takes and the largest `ctx` that would fit, so the operator can lower ctx or change
 * the ratios.
 */
export function checkDeviceBudget(plan: readonly DeviceShare[], memory: readonly DeviceMemory[], input: Pick<DeviceBudgetInput, 'contextPerSlot' | 'slots' | 'kvBytesPerToken'>): void {
  for (const need of plan) {
    const device = memory.find((entry) => entry.device === need.device);
    if (device === undefined) {
      throw new ReplicaFailure(ErrorCode.POOL_UNAVAILABLE, 'device_mask_invalid', `nvidia-smi reports no memory for GPU ${need.device} of the device mask`, false);
    }
    const what = describeNeed(need, input);
    if (need.needBytes > device.totalBytes) {
      throw new ReplicaFailure(
        ErrorCode.POOL_UNAVAILABLE,
        'insufficient_vram',
        `GPU ${need.device} cannot hold its share: ${what}, ${formatMib(device.totalBytes)} in all (ORCH-3052)${fitHint(need, device.totalBytes, input)}`,
        false,
      );
    }
    if (need.needBytes > device.freeBytes) {
      throw new ReplicaFailure(
        ErrorCode.POOL_UNREADY,
        'insufficient_vram',
        `insufficient VRAM headroom on GPU ${need.device}: ${what}, ${formatMib(device.freeBytes)} free of ${formatMib(device.totalBytes)}${fitHint(need, device.freeBytes, input)}`,
      );
    }
  }
}

/** The figure the launch logs: per device, its share and what it needs (bytes), so an OOM can be read against it. */
export function describeDeviceBudget(plan: readonly DeviceShare[]): Record<string, { share: number; weights_bytes: number; kv_bytes: number; need_bytes: number }> {
  return Object.fromEntries(
    plan.map((need) => [`gpu${need.device}`, { share: Number(need.share.toFixed(4)), weights_bytes: need.weightsBytes, kv_bytes: need.kvBytes, need_bytes: need.needBytes }]),
  );
}

function describeNeed(need: DeviceShare, input: Pick<DeviceBudgetInput, 'contextPerSlot' | 'slots' | 'kvBytesPerToken'>): string {
  const kv = input.kvBytesPerToken === undefined ? 'KV cache not counted (model metadata unreadable)' : `KV cache ${formatMib(need.kvBytes)} (ctx ${input.contextPerSlot} × ${input.slots} slot${input.slots === 1 ? '' : 's'})`;
  return `share ${need.share.toFixed(2)} needs ${formatMib(need.needBytes)} (weights ${formatMib(need.weightsBytes)}, ${kv}, ${formatMib(DEVICE_OVERHEAD_BYTES)} overhead)`;
}

/** The largest ctx per slot whose KV share fits in `availableBytes` beside the weights and the overhead. */
function fitHint(need: DeviceShare, availableBytes: number, input: Pick<DeviceBudgetInput, 'slots' | 'kvBytesPerToken'>): string {
  if (input.kvBytesPerToken === undefined || input.kvBytesPerToken <= 0 || need.share <= 0) return '';
  const room = availableBytes - need.weightsBytes - DEVICE_OVERHEAD_BYTES;
  const ctx = Math.floor(room / (input.kvBytesPerToken * input.slots * need.share));
  return ctx >= 1 ? `; the largest ctx that fits is ${ctx}` : '; the weights alone do not fit';
}

function formatMib(bytes: number): string {
  return `${Math.round(bytes / MIB)} MiB`;
}
