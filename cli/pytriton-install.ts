import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { TritonServerArtifact } from '../gpu-workers/pool-manager/pool-artifacts';
import { cacheDir } from './cache-dir';
import { ensurePythonVenv } from './python-venv';

/**
 * Pinned: the PyPI wheel that carries a real Triton Inference Server (`tritonserver` 2.51.0, its Python
 * backend and a backend stub per Python 3.8–3.13). Only the server is used (.specs/engines/triton.md).
 */
export const PYTRITON_VERSION = '0.7.0';
/** The server version that wheel carries, as its GET /v2 reports it (measured, .specs/engines/triton.md). */
export const TRITON_SERVER_VERSION = '2.51.0';

type Progress = (message: string) => void;

const defaultProgress: Progress = (message) => process.stderr.write(`[llama-orch] ${message}\n`);

let installing: Promise<TritonServerArtifact> | undefined;

/**
 * Finds or installs nvidia-pytriton in a venv in the cache (`~/.cache/llama-orch/pytriton-<version>/`, 369 MB,
 * ~25 s cold), with pip's progress; then checks that the wheel has a backend stub for this venv's Python,
 * which Triton needs to run a Python model. Resolves with the venv's interpreter.
 */
export function ensurePytriton(progress: Progress = defaultProgress): Promise<TritonServerArtifact> {
  installing ??= install(progress).catch((error: unknown) => {
    installing = undefined;
    throw error;
  });
  return installing;
}

async function install(progress: Progress): Promise<TritonServerArtifact> {
  const venv = await ensurePythonVenv({ venv: join(cacheDir(), `pytriton-${PYTRITON_VERSION}`), requirement: `nvidia-pytriton==${PYTRITON_VERSION}`, progress });
  const python = join(venv, 'bin', 'python');
  const probe = [
    'import pathlib, sys, pytriton',
    'root = pathlib.Path(pytriton.__file__).parent / "tritonserver"',
    'stub = root / "python_backend_stubs" / f"{sys.version_info.major}.{sys.version_info.minor}" / "triton_python_backend_stub"',
    'print(f"{sys.version_info.major}.{sys.version_info.minor}", (root / "bin" / "tritonserver").exists(), stub.exists())',
  ].join('\n');
  const { stdout } = await promisify(execFile)(python, ['-c', probe], { encoding: 'utf8', timeout: 60_000 });
  const [pythonVersion, hasServer, hasStub] = stdout.trim().split(' ');
  if (hasServer !== 'True') throw new Error(`nvidia-pytriton ${PYTRITON_VERSION} in ${venv} has no tritonserver binary (this platform's wheel may lack it)`);
  if (hasStub !== 'True') throw new Error(`nvidia-pytriton ${PYTRITON_VERSION} has no Python-backend stub for Python ${pythonVersion ?? '?'} (it ships 3.8–3.13); make python3 one of those`);
  return { python, version: PYTRITON_VERSION };
}
