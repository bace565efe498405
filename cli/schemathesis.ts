import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cacheDir } from './cache-dir';
import { runCommand } from './run-command';

/** Pinned: schemathesis 4.x from PyPI (Python ≥ 3.9), the API fuzzer CI runs against the OpenAPI document. */
export const SCHEMATHESIS_VERSION = '4.32.5';

/**
 * Finds or installs the `st` CLI in a venv in the cache (`~/.cache/llama-orch/schemathesis-<version>/`),
 * as cli/temporal-binary.ts installs the Temporal CLI: one time, with pip's progress, reused afterwards.
 * A marker written last tells a finished install from an interrupted one (console scripts name their
 * venv by absolute path, so the venv is built in place rather than renamed).
 */
export async function ensureSchemathesis(progress: (message: string) => void = (message) => process.stderr.write(`[llama-orch] ${message}\n`)): Promise<string> {
  const target = join(cacheDir(), `schemathesis-${SCHEMATHESIS_VERSION}`);
  const binary = join(target, 'bin', 'st');
  const marker = join(target, '.installed');
  if (existsSync(marker) && existsSync(binary)) return binary;
  rmSync(target, { recursive: true, force: true });
  progress(`installing schemathesis ${SCHEMATHESIS_VERSION} (PyPI) into ${target} — one time`);
  await runCommand('python3', ['-m', 'venv', target]);
  await runCommand(join(target, 'bin', 'python'), ['-m', 'pip', 'install', '--disable-pip-version-check', '--progress-bar', 'on', `schemathesis==${SCHEMATHESIS_VERSION}`]);
  writeFileSync(marker, `${SCHEMATHESIS_VERSION}\n`);
  return binary;
}
