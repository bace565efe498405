import { execFile } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { promisify } from 'node:util';
import { cacheDir } from './cache-dir';
import { bytesUnder, fileBytes, runBuild, runDownload } from './command-progress';
import { commandSucceeds, runCommand } from './run-command';

/**
 * The llama.cpp build we run and test against. The source is the git bundle node-llama-cpp ships in
 * its npm tarball (`llama/gitRelease.bundle`, one squashed commit of a llama.cpp release), so it
 * comes from a package registry and never from GitHub. Bumping this rebuilds everything keyed on it.
 */
export const LLAMA_CPP_PIN = { nodeLlamaCpp: '3.22.1' } as const;
/** node-llama-cpp-3.22.1.tgz; the registry does not say a tarball's size, and the progress bar wants one (shown as ~). */
const NODE_LLAMA_CPP_TARBALL_BYTES = 35_735_663;

export type LlamaServerBackend = 'cpu' | 'cuda';

export interface LlamaServerBinary {
  readonly path: string;
  /** `b<build>-<commit>`, the form llama-server reports as /props `build_info` (ORCH-3032). */
  readonly buildInfo: string;
  readonly backend: LlamaServerBackend;
}

type Progress = (message: string) => void;

/** What we record next to an installed binary, so a cache hit needs no process start. */
interface InstalledBuildInfo {
  readonly buildInfo: string;
  readonly backend: LlamaServerBackend;
  readonly versionText: string;
  readonly nodeLlamaCpp: string;
  readonly release: string;
  readonly cmakeArguments: readonly string[];
  readonly buildSeconds: number;
}

/** The llama.cpp source tree of the pinned release (also the home of the vocab-only GGUFs). */
export function llamaCppSourceDir(): string {
  return join(cacheDir(), 'llama-cpp-src', LLAMA_CPP_PIN.nodeLlamaCpp);
}

function installDir(backend: LlamaServerBackend): string {
  return join(cacheDir(), 'llama-server', `${LLAMA_CPP_PIN.nodeLlamaCpp}-${backend}`);
}

/**
 * Finds llama-server: $LLAMA_SERVER, then the cache; builds the pinned release into the cache when
 * neither has one (several minutes on 2 cores, once per pin and backend), showing progress.
 */
export async function ensureLlamaServer(progress: Progress = defaultProgress): Promise<LlamaServerBinary> {
  const explicit = process.env['LLAMA_SERVER'];
  if (explicit) {
    if (!existsSync(explicit)) throw new Error(`LLAMA_SERVER=${explicit} does not exist`);
    const versionText = await readVersion(explicit);
    // A user-supplied binary has no record of how it was built; CUDA builds name their devices.
    return { path: explicit, buildInfo: parseBuildInfo(versionText), backend: /cuda/i.test(versionText) ? 'cuda' : 'cpu' };
  }

  const gpu = await detectCudaToolchain();
  const backend: LlamaServerBackend = gpu ? 'cuda' : 'cpu';
  const target = installDir(backend);
  const binary = join(target, 'bin', 'llama-server');
  if (existsSync(binary)) {
    const recorded = readInstalledBuildInfo(target);
    const buildInfo = recorded?.buildInfo ?? parseBuildInfo(await readVersion(binary));
    return { path: binary, buildInfo, backend };
  }

  const source = await ensureLlamaCppSource(progress);
  const installed = await buildLlamaServer(source, backend, gpu?.architectures, progress);
  return { path: binary, buildInfo: installed.buildInfo, backend };
}

/** Unpacks the pinned llama.cpp tree into the cache (seconds: one npm tarball, one local clone). */
export async function ensureLlamaCppSource(progress: Progress = defaultProgress): Promise<string> {
  const target = llamaCppSourceDir();
  if (existsSync(join(target, 'CMakeLists.txt'))) return target;

  const pin = LLAMA_CPP_PIN.nodeLlamaCpp;
  mkdirSync(join(cacheDir(), 'llama-cpp-src'), { recursive: true });
  // Staging inside the cache keeps the final rename on one filesystem, hence atomic.
  const work = mkdtempSync(join(cacheDir(), 'llama-cpp-src', `.${pin}.partial-`));
  try {
    progress(`fetching the llama.cpp source from npm (node-llama-cpp@${pin}, ~35 MB) into ${target} — one time`);
    // npm streams a download into its cache's tmp/ before the tarball lands: that is what the bar counts.
    const npmCache = await npmCacheDir();
    const tarball = join(work, `node-llama-cpp-${pin}.tgz`);
    await runDownload('npm', ['pack', '--silent', '--pack-destination', work, `node-llama-cpp@${pin}`], {
      label: `node-llama-cpp@${pin}`,
      downloadedBytes: () => (npmCache === undefined ? 0 : bytesUnder(join(npmCache, '_cacache', 'tmp'))),
      estimatedBytes: NODE_LLAMA_CPP_TARBALL_BYTES,
      finalBytes: () => fileBytes(tarball),
    });
    if (!existsSync(tarball)) throw new Error(`npm pack did not produce ${tarball}`);
    await runCommand('tar', ['-xzf', tarball, '-C', work, 'package/llama/gitRelease.bundle', 'package/llama/llama.cpp.info.json']);
    const tree = join(work, 'tree');
    await runCommand('git', ['-c', 'advice.detachedHead=false', 'clone', '--quiet', join(work, 'package', 'llama', 'gitRelease.bundle'), tree]);
    // Which upstream release the squashed bundle holds; the tree's own history cannot say.
    copyFileSync(join(work, 'package', 'llama', 'llama.cpp.info.json'), join(tree, 'node-llama-cpp.llama.cpp.info.json'));
    if (!existsSync(target)) renameSync(tree, target);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return target;
}

/** The upstream release tag of the pinned bundle, e.g. `v0.5.0` (from node-llama-cpp's metadata). */
export function llamaCppRelease(): string {
  try {
    const info = JSON.parse(readFileSync(join(llamaCppSourceDir(), 'node-llama-cpp.llama.cpp.info.json'), 'utf8')) as { tag?: unknown };
    return typeof info.tag === 'string' ? info.tag : 'unknown';
  } catch {
    return 'unknown';
  }
}

function cmakeConfigureArguments(source: string, build: string, cudaArchitectures: string | undefined, ccache: boolean): string[] {
  const args = [
    '-S', source, '-B', build,
    '-DCMAKE_BUILD_TYPE=Release',
    // Offline and self-contained: no libcurl/OpenSSL (the server only listens on loopback), and one
    // static binary that can be copied out of the build tree.
    '-DLLAMA_CURL=OFF', '-DLLAMA_OPENSSL=OFF', '-DBUILD_SHARED_LIBS=OFF',
    // Without a UI the server build would fetch prebuilt assets from a Hugging Face bucket. The
    // pinned tree names the switches *_UI, older trees *_WEBUI; both, so a pin bump cannot re-enable it.
    '-DLLAMA_BUILD_UI=OFF', '-DLLAMA_USE_PREBUILT_UI=OFF', '-DLLAMA_BUILD_WEBUI=OFF', '-DLLAMA_USE_PREBUILT_WEBUI=OFF',
    '-DLLAMA_BUILD_TESTS=OFF', '-DLLAMA_BUILD_EXAMPLES=OFF',
    // Portable, not -march=native: the cache may be shared (CI cache, a container image) with a
    // machine whose CPU lacks this one's extensions. Off still enables AVX2/FMA/F16C on x86-64.
    '-DGGML_NATIVE=OFF',
  ];
  // We set the launcher ourselves; ggml's own ccache probe would only warn when there is none.
  args.push('-DGGML_CCACHE=OFF');
  if (ccache) args.push('-DCMAKE_C_COMPILER_LAUNCHER=ccache', '-DCMAKE_CXX_COMPILER_LAUNCHER=ccache');
  if (cudaArchitectures !== undefined) {
    args.push('-DGGML_CUDA=ON', `-DCMAKE_CUDA_ARCHITECTURES=${cudaArchitectures}`);
    if (ccache) args.push('-DCMAKE_CUDA_COMPILER_LAUNCHER=ccache');
  }
  return args;
}

async function buildLlamaServer(
  source: string,
  backend: LlamaServerBackend,
  cudaArchitectures: string | undefined,
  progress: Progress,
): Promise<InstalledBuildInfo> {
  const target = installDir(backend);
  // Kept across failed or interrupted runs: `cmake --build` resumes where it stopped.
  const build = `${target}.build`;
  const ccache = await commandSucceeds('ccache', ['--version']);
  const jobs = availableParallelism();
  const configure = cmakeConfigureArguments(source, build, cudaArchitectures, ccache);
  progress(
    `building llama-server (llama.cpp ${llamaCppRelease()} from node-llama-cpp@${LLAMA_CPP_PIN.nodeLlamaCpp}, ${backend}` +
      `${cudaArchitectures !== undefined ? ` sm_${cudaArchitectures}` : ''}, -j${jobs}${ccache ? ', ccache' : ''}) into ${target} — one time, minutes`,
  );
  const started = performance.now();
  await runBuild('cmake', configure, 'configuring the llama-server build');
  await runBuild('cmake', ['--build', build, '--config', 'Release', '--target', 'llama-server', '-j', String(jobs)], 'building llama-server');
  const buildSeconds = Math.round((performance.now() - started) / 1000);

  const built = join(build, 'bin', 'llama-server');
  const versionText = await readVersion(built);
  const installed: InstalledBuildInfo = {
    buildInfo: parseBuildInfo(versionText),
    backend,
    versionText: versionLines(versionText),
    nodeLlamaCpp: LLAMA_CPP_PIN.nodeLlamaCpp,
    release: llamaCppRelease(),
    cmakeArguments: configure.slice(4),
    buildSeconds,
  };
  const staging = `${target}.partial-${process.pid}`;
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(join(staging, 'bin'), { recursive: true });
  copyFileSync(built, join(staging, 'bin', 'llama-server'));
  chmodSync(join(staging, 'bin', 'llama-server'), 0o755);
  writeFileSync(join(staging, 'build-info.json'), `${JSON.stringify(installed, null, 2)}\n`);
  rmSync(target, { recursive: true, force: true });
  renameSync(staging, target);
  // The binary is static; the object files only matter to a rebuild of this very pin.
  rmSync(build, { recursive: true, force: true });
  progress(`built llama-server ${installed.buildInfo} in ${buildSeconds} s`);
  return installed;
}

function readInstalledBuildInfo(target: string): InstalledBuildInfo | undefined {
  try {
    return JSON.parse(readFileSync(join(target, 'build-info.json'), 'utf8')) as InstalledBuildInfo;
  } catch {
    return undefined;
  }
}

/** A CUDA build needs both the compiler and a GPU to run on; returns the GPUs' architectures. */
async function detectCudaToolchain(): Promise<{ architectures: string } | undefined> {
  if (!(await commandSucceeds('nvcc', ['--version']))) return undefined;
  let output: string;
  try {
    output = (await capture('nvidia-smi', ['--query-gpu=compute_cap', '--format=csv,noheader'])).stdout;
  } catch {
    return undefined;
  }
  const architectures = [...new Set(output.split('\n').map((line) => line.trim().replace('.', '')).filter((cap) => /^\d+$/.test(cap)))];
  return architectures.length > 0 ? { architectures: architectures.join(';') } : undefined;
}

/** Everything `--version` prints: the version on stderr, after log lines (device lines on CUDA builds). */
async function readVersion(binary: string): Promise<string> {
  const { stdout, stderr } = await capture(binary, ['--version']);
  return `${stdout}${stderr}`;
}

/** The version lines alone, without the timestamped log lines around them. */
function versionLines(versionText: string): string {
  return versionText
    .split('\n')
    .filter((line) => line.trim().length > 0 && !/^\d+\.\d+\.\d+\.\d+ [A-Z] /.test(line))
    .join('\n');
}

/** `version: 0.5.0-dev (build 1, commit de3ff81)` → `b1-de3ff81`, the form /props reports. */
export function parseBuildInfo(versionText: string): string {
  const match = /build (\d+), commit ([0-9a-zA-Z]+)/.exec(versionText);
  if (match?.[1] === undefined || match[2] === undefined) throw new Error(`unrecognized llama-server --version output: ${versionText.slice(0, 300)}`);
  return `b${match[1]}-${match[2]}`;
}

/** Where npm keeps its cache (`npm config get cache`, ~/.npm unless configured); unknown only costs the bar its bytes. */
async function npmCacheDir(): Promise<string | undefined> {
  try {
    return (await capture('npm', ['config', 'get', 'cache'])).stdout.trim() || undefined;
  } catch {
    return undefined;
  }
}

function capture(command: string, args: readonly string[]): Promise<{ stdout: string; stderr: string }> {
  return promisify(execFile)(command, args, { timeout: 60_000, maxBuffer: 16 * 1024 * 1024, encoding: 'utf8' });
}

function defaultProgress(message: string): void {
  process.stderr.write(`[llama-orch] ${message}\n`);
}
