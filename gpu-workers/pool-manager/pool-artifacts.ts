import type { ModelCatalogEntry } from '../../core/config';

export interface LlamaServerArtifact {
  readonly path: string;
  /** `b<build>-<commit>` (ORCH-3032). */
  readonly buildInfo: string;
  readonly backend: 'cpu' | 'cuda';
}

export interface ModelFile {
  readonly path: string;
  /** The digest the provisioner recorded next to the file, if any. */
  readonly recordedSha256: string | undefined;
}

/**
 * Where a replica gets its engine binary and model file. cli/provision-pools.ts implements it over
 * the cache (provisioning what is missing); tests may inject their own.
 */
export interface PoolArtifacts {
  llamaServer(): Promise<LlamaServerArtifact>;
  model(entry: ModelCatalogEntry): Promise<ModelFile>;
}
