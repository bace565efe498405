/**
 * The ratios a pool's engine splits the model by (ORCH-3012/3027 `tensor_split`): the configured ones on a
 * multi-device mask (llama-server gets them as `--tensor-split`), else null: one device, or no ratios
 * configured, where the engine runs on the mask's first device alone. Never made up.
 */
export function tensorSplitOf(devices: readonly number[], ratios: readonly number[] | null | undefined): readonly number[] | null {
  return devices.length > 1 && ratios != null && ratios.length > 0 ? ratios : null;
}

/** `tensorSplitOf` as the log field writes it, e.g. `0.67,0.33`. */
export function describeTensorSplit(devices: readonly number[], ratios: readonly number[] | null | undefined): string | null {
  return tensorSplitOf(devices, ratios)?.join(',') ?? null;
}
