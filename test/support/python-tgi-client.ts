import { join } from 'node:path';
import { cacheDir } from '../../cli/cache-dir';
import { ensurePythonVenv } from '../../cli/python-venv';

/**
 * Pinned: TGI's own Python client (`text-generation`, from clients/python of huggingface/text-generation-inference),
 * which brings `huggingface_hub` (its InferenceClient speaks TGI too). Both parse TGI's frames with pydantic models.
 */
export const PYTHON_TEXT_GENERATION_VERSION = '0.7.0';

/** The venv's python with `text-generation` installed (one time into the cache, reused afterwards). */
export async function ensurePythonTgiClient(): Promise<string> {
  const venv = await ensurePythonVenv({
    venv: join(cacheDir(), `python-text-generation-${PYTHON_TEXT_GENERATION_VERSION}`),
    requirement: `text-generation==${PYTHON_TEXT_GENERATION_VERSION}`,
    progress: (message) => process.stderr.write(`[llama-orch] ${message}\n`),
    pipOutputToStderr: true,
  });
  return join(venv, 'bin', 'python');
}
