import { join } from 'node:path';
import { cacheDir } from '../../cli/cache-dir';
import { ensurePythonVenv } from '../../cli/python-venv';

/** Pinned: the official OpenAI Python client from PyPI, as users install it. */
export const PYTHON_OPENAI_VERSION = '3.63.0';

/** The venv's python with `openai` installed (one time into the cache, reused afterwards). */
export async function ensurePythonOpenAi(): Promise<string> {
  const venv = await ensurePythonVenv({
    venv: join(cacheDir(), `python-openai-${PYTHON_OPENAI_VERSION}`),
    requirement: `openai==${PYTHON_OPENAI_VERSION}`,
    progress: (message) => process.stderr.write(`[llama-orch] ${message}\n`),
    pipOutputToStderr: true,
  });
  return join(venv, 'bin', 'python');
}
