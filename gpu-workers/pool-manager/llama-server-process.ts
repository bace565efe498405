import { execFile, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { freemem, totalmem } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { ErrorCode } from '../../core/errors';
import { tensorSplitOf } from '../../core/tensor-split';
import type { EngineAdapter } from '../engines/engine-adapter';
import { classifyEngineExit } from './crash-classification';
import type { EngineExit } from './crash-classification';
import { eccIncrease, readUncorrectedEccCounts } from './gpu-probe';
import { ReplicaFailure } from './replica-failure';
import { boundToParent } from '../../platform/parent-death';

/** How much engine output is kept for crash classification and failure messages. */
const OUTPUT_RING_CHARS = 32 * 1024;
const HEALTH_POLL_MS = 100;

const flagCache = new Map<string, Promise<ReadonlySet<string>>>();

/**
 * Every long flag the build's `--help` mentions. Unknown flags are fatal to llama-server and the flag
 * set moves between builds (engines.md §1.1), so optional flags are passed only when listed.
 */
export function llamaServerFlags(binary: string): Promise<ReadonlySet<string>> {
  let flags = flagCache.get(binary);
  if (flags === undefined) {
    flags = promisify(execFile)(binary, ['--help'], { maxBuffer: 16 * 1024 * 1024, timeout: 30_000, encoding: 'utf8' }).then(
      ({ stdout, stderr }) => new Set(`${stdout}\n${stderr}`.match(/--[a-z0-9][a-z0-9-]*/g) ?? []),
    );
    flagCache.set(binary, flags);
  }
  return flags;
}

export interface LlamaServerLaunch {
  readonly modelPath: string;
  readonly slots: number;
  /** Context per slot, in tokens: the pool's `ctx`, which admission checks against. */
  readonly contextPerSlot: number;
  readonly threads?: number | null | undefined;
  readonly useGpu: boolean;
  readonly extraArgs: readonly string[];
  /** `--slot-save-path`: enables llama-server's slot erase action (session KV eviction). */
  readonly slotSavePath?: string | undefined;
  /** The pool's device mask; the engine sees it renumbered from 0 (CUDA_VISIBLE_DEVICES). */
  readonly devices: readonly number[];
  /** The pool's `tensor_split`, one ratio per device (ORCH-3012); absent → no cross-GPU split. */
  readonly tensorSplit?: readonly number[] | null | undefined;
}

/**
 * ORCH-3012: splitting a model across GPUs is opt-in. A multi-device mask with ratios splits layers by
 * them; without ratios the engine runs on the mask's first device alone (llama.cpp's default would
 * split layers across every visible GPU). Passed whether or not `--help` lists them: a build that
 * cannot honour the split must fail to start, not quietly split its own way.
 */
function splitArguments(devices: readonly number[], ratios: readonly number[] | null | undefined): string[] {
  if (devices.length <= 1) return [];
  const split = tensorSplitOf(devices, ratios);
  if (split === null) return ['--split-mode', 'none', '--main-gpu', '0'];
  return ['--split-mode', 'layer', '--tensor-split', split.join(',')];
}

/**
 * The command line, minus host and port. With one slot it is the deterministic profile of
 * engines.md §1.6: no continuous batching and no RAM prompt cache shared between requests.
 */
export function llamaServerArguments(launch: LlamaServerLaunch, flags: ReadonlySet<string>): string[] {
  const args = ['-m', launch.modelPath, '-np', String(launch.slots), '-c', String(launch.contextPerSlot * launch.slots), '--metrics'];
  if (launch.threads != null) args.push('-t', String(launch.threads));
  args.push(...splitArguments(launch.devices, launch.tensorSplit));
  const optional: (readonly [string, ...string[]])[] = [
    ['--slots'],
    ['--no-webui'],
    // Pinned, or "fit" picks a layer split from the free device memory of the moment.
    ['--n-gpu-layers', launch.useGpu ? '999' : '0'],
    ['--fit', 'off'],
    // A prompt cache shared across requests makes one request's output depend on another's.
    ['--cache-ram', '0'],
  ];
  if (launch.slotSavePath !== undefined) optional.push(['--slot-save-path', launch.slotSavePath]);
  // Continuous batching changes the batch shape, hence the float order; one slot gains nothing from it.
  if (launch.slots === 1) optional.push(['--no-cont-batching']);
  for (const option of optional) if (flags.has(option[0])) args.push(...option);
  args.push(...launch.extraArgs);
  return args;
}

export interface LlamaServerProcess {
  readonly pid: number | undefined;
  readonly baseUrl: string;
  readonly args: readonly string[];
  /** Resolves when the process ends, with the cause classified (never rejects). */
  readonly exited: Promise<ReplicaFailure>;
  output(): string;
  /** SIGTERM, then SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

export interface SpawnLlamaServerOptions {
  readonly binary: string;
  readonly args: readonly string[];
  /** The pool's device mask (ORCH-3001): the engine sees only these GPUs. */
  readonly devices: readonly number[];
  /** The driver's uncorrected ECC counts of the mask, read at start and at exit (ORCH-3053); nvidia-smi by default. */
  readonly readEccCounts?: (devices: readonly number[]) => Promise<ReadonlyMap<number, number> | undefined>;
  /** Added to the environment (an engine configured by variables: vLLM's CPU backend). */
  readonly env?: NodeJS.ProcessEnv | undefined;
  /**
   * Start the engine as the leader of a process group of its own and signal the whole group on stop: for an
   * engine that runs its work in child processes (vLLM's engine core and workers), which a signal to the
   * leader alone could leave behind.
   */
  readonly processGroup?: boolean | undefined;
  /**
   * What the engine gets when this pool worker dies (SIGKILL by default). SIGTERM for an engine whose children
   * only go when it shuts them down: vLLM's engine core and worker outlive a SIGKILLed server (measured), and
   * exit with a SIGTERMed one.
   */
  readonly parentDeathSignal?: 'SIGKILL' | 'SIGTERM' | undefined;
}

async function freeLoopbackPort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function processEnded(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

/** Starts llama-server on a free loopback port, pinned to the pool's devices, output kept in a ring. */
export async function spawnLlamaServer(options: SpawnLlamaServerOptions): Promise<LlamaServerProcess> {
  const port = await freeLoopbackPort();
  const args = [...options.args, '--host', '127.0.0.1', '--port', String(port)];
  // Ends with this pool worker however it dies, so a SIGKILLed worker leaves no engine holding the GPU.
  const command = boundToParent(options.binary, args, options.parentDeathSignal);
  const child = spawn(command.command, command.args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...options.env, CUDA_VISIBLE_DEVICES: options.devices.join(',') },
    detached: options.processGroup === true,
  });
  const signal = (name: NodeJS.Signals): void => {
    if (options.processGroup === true && child.pid !== undefined) {
      try {
        process.kill(-child.pid, name);
        return;
      } catch {
        // The group is gone already; the leader is signalled below in case it is not.
      }
    }
    child.kill(name);
  };
  const readEcc = options.readEccCounts ?? readUncorrectedEccCounts;
  // Read beside the start, never before it: an answer only matters if the engine dies.
  const eccAtStart = readEcc(options.devices);
  let ring = '';
  const keep = (chunk: Buffer): void => {
    ring = (ring + chunk.toString('utf8')).slice(-OUTPUT_RING_CHARS);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<ReplicaFailure>((resolve) => {
    const settle = (exitCode: number | null, signal: NodeJS.Signals | null): void => {
      const hostFreeBytes = freemem();
      const output = ring;
      void Promise.all([eccAtStart, readEcc(options.devices)]).then(([before, after]) => {
        const exit: EngineExit = { exitCode, signal, output, hostFreeBytes, hostTotalBytes: totalmem(), eccUncorrectedIncrease: eccIncrease(before, after) };
        resolve(classifyEngineExit(exit));
      });
    };
    child.once('error', (error) => {
      keep(Buffer.from(`spawn failed: ${error.message}\n`));
      settle(null, null);
    });
    child.once('close', settle);
  });
  return {
    pid: child.pid,
    baseUrl: `http://127.0.0.1:${port}`,
    args,
    exited,
    output: () => ring,
    stop: async (graceMs = 5_000) => {
      if (child.pid === undefined || processEnded(child)) {
        await exited;
        return;
      }
      signal('SIGTERM');
      const timer = setTimeout(() => signal('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
      // Children that outlived their leader (a SIGKILL, or a slow shutdown) go with the group.
      if (options.processGroup === true) signal('SIGKILL');
    },
  };
}

/**
 * Waits until /health answers 200 (model loaded, ORCH-3002). Fails with the classified exit when
 * the process ends first, or with `load_timeout` when loading takes longer than `timeoutMs`.
 */
export async function waitUntilHealthy(engine: LlamaServerProcess, adapter: EngineAdapter, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let ended: ReplicaFailure | undefined;
  void engine.exited.then((failure) => {
    ended = failure;
  });
  let detail = 'no answer';
  while (Date.now() < deadline) {
    if (ended !== undefined) throw ended;
    const health = await adapter.health();
    if (health.ready) return;
    detail = health.detail ?? 'loading';
    await sleep(HEALTH_POLL_MS);
  }
  if (ended !== undefined) throw ended;
  throw new ReplicaFailure(ErrorCode.WORKER_RESET, 'load_timeout', `llama-server not healthy within ${timeoutMs} ms (${detail})`);
}
