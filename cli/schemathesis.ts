import { join } from 'node:path';
import { cacheDir } from './cache-dir';
import { ensurePythonVenv } from './python-venv';

/** Pinned: schemathesis 4.x from PyPI (Python ≥ 3.9), the API fuzzer CI runs against the OpenAPI document. */
export const SCHEMATHESIS_VERSION = '4.32.5';

/**
 * Finds or installs the `st` CLI in a venv in the cache (`~/.cache/llama-orch/schemathesis-<version>/`),
 * as cli/temporal-binary.ts installs the Temporal CLI: one time, with pip's progress, reused afterwards.
 */
export async function ensureSchemathesis(progress: (message: string) => void = (message) => process.stderr.write(`[llama-orch] ${message}\n`)): Promise<string> {
  const venv = await ensurePythonVenv({ venv: join(cacheDir(), `schemathesis-${SCHEMATHESIS_VERSION}`), requirement: `schemathesis==${SCHEMATHESIS_VERSION}`, progress });
  return join(venv, 'bin', 'st');
}
