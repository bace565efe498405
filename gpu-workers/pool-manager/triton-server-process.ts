import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { ErrorCode } from '../../core/errors';
import { boundToParent } from '../../platform/parent-death';
import { ReplicaFailure } from './replica-failure';

/** How much Triton output is kept for failure messages. */
const OUTPUT_RING_CHARS = 32 * 1024;
const LAUNCH_SCRIPT = join('gpu-workers', 'engines', 'triton', 'server', 'launch-triton-server.py');
const WORKDIR_PREFIX = 'llama-orch-tritonserver-wd-';
/** In each work directory: the pid of the server using it. */
const WORKDIR_PID_FILE = 'server.pid';
const STALE_WITHOUT_PID_MS = 10 * 60_000;

export interface TritonServerLaunch {
  /** The interpreter of the venv that holds nvidia-pytriton. */
  readonly python: string;
  /** The Triton model name requests use. */
  readonly modelName: string;
  /** The llama-server the model generates with, on loopback. */
  readonly llamaServerPort: number;
  readonly contextPerSlot: number;
  readonly slots: number;
  /** Published as model parameters (engine_version, model path). */
  readonly engineBuild: string;
  readonly modelPath: string;
}

export interface TritonServerProcess {
  readonly pid: number | undefined;
  readonly baseUrl: string;
  readonly metricsUrl: string;
  /** Resolves when the server ends (never rejects). */
  readonly exited: Promise<ReplicaFailure>;
  output(): string;
  /** SIGTERM to the process group (Triton and its Python-backend stubs), SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

/** The launch script, found from this module whether it runs from the sources (jest) or from dist/. */
export function tritonLaunchScript(from: string = __dirname): string {
  for (let directory = from; ; directory = dirname(directory)) {
    const candidate = join(directory, LAUNCH_SCRIPT);
    if (existsSync(candidate)) return candidate;
    if (dirname(directory) === directory) throw new Error(`${LAUNCH_SCRIPT} not found above ${from}`);
  }
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

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Work directories whose server is gone: a stop removes its own, but a SIGKILLed pool worker cannot (its Triton
 * dies by the parent-death signal). Each holds a copy of the backend directory and the model repository (~3 MB).
 */
export function removeStaleWorkdirs(parent: string = tmpdir()): void {
  for (const name of readdirSync(parent)) {
    if (!name.startsWith(WORKDIR_PREFIX)) continue;
    const directory = join(parent, name);
    let stale: boolean;
    try {
      const pid = Number(readFileSync(join(directory, WORKDIR_PID_FILE), 'utf8'));
      stale = Number.isInteger(pid) && pid > 0 && !processAlive(pid);
    } catch {
      // No pid yet: a start in progress writes it within milliseconds; one this old never will.
      try {
        stale = Date.now() - statSync(directory).mtimeMs > STALE_WITHOUT_PID_MS;
      } catch {
        continue;
      }
    }
    if (stale) rmSync(directory, { recursive: true, force: true });
  }
}

function processEnded(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // The group is gone already.
  }
}

function lastLines(output: string, count = 3, maxChars = 400): string {
  return output
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line.length > 0)
    .slice(-count)
    .join(' | ')
    .slice(-maxChars);
}

/**
 * Starts Triton (launch-triton-server.py, which writes the model repository into a fresh work directory and
 * execs `tritonserver`) on two free loopback ports: HTTP and metrics, gRPC off. The process leads its own
 * group, so a stop reaches the Python-backend stubs too, and it dies with this pool worker (parent-death signal).
 */
export async function spawnTritonServer(launch: TritonServerLaunch): Promise<TritonServerProcess> {
  const [httpPort, metricsPort] = [await freeLoopbackPort(), await freeLoopbackPort()];
  removeStaleWorkdirs();
  const workdir = mkdtempSync(join(tmpdir(), WORKDIR_PREFIX));
  const args = [
    tritonLaunchScript(),
    '--workdir',
    workdir,
    '--model-name',
    launch.modelName,
    '--llama-server-port',
    String(launch.llamaServerPort),
    '--http-port',
    String(httpPort),
    '--metrics-port',
    String(metricsPort),
    '--context-per-slot',
    String(launch.contextPerSlot),
    '--slots',
    String(launch.slots),
    '--engine-build',
    launch.engineBuild,
    '--model-path',
    launch.modelPath,
  ];
  const command = boundToParent(launch.python, args);
  const child = spawn(command.command, command.args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  if (child.pid !== undefined) writeFileSync(join(workdir, WORKDIR_PID_FILE), String(child.pid));
  let ring = '';
  const keep = (chunk: Buffer): void => {
    ring = (ring + chunk.toString('utf8')).slice(-OUTPUT_RING_CHARS);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  // The stubs hold the output pipes open after a killed server; they go with it, so 'close' comes.
  child.once('exit', () => {
    if (child.pid !== undefined) killGroup(child.pid, 'SIGKILL');
  });
  const exited = new Promise<ReplicaFailure>((resolve) => {
    const settle = (exitCode: number | null, signal: NodeJS.Signals | null): void => {
      rmSync(workdir, { recursive: true, force: true });
      const how = signal !== null ? `killed by ${signal}` : `exited with code ${String(exitCode)}`;
      const tail = lastLines(ring);
      resolve(new ReplicaFailure(ErrorCode.WORKER_RESET, 'engine_exit', `tritonserver ${how}${tail ? ` — ${tail}` : ''}`));
    };
    child.once('error', (error) => {
      keep(Buffer.from(`spawn failed: ${error.message}\n`));
      settle(null, null);
    });
    child.once('close', settle);
  });
  return {
    pid: child.pid,
    baseUrl: `http://127.0.0.1:${httpPort}`,
    metricsUrl: `http://127.0.0.1:${metricsPort}/metrics`,
    exited,
    output: () => ring,
    stop: async (graceMs = 3_000) => {
      if (child.pid === undefined || processEnded(child)) {
        await exited;
        return;
      }
      killGroup(child.pid, 'SIGTERM');
      const pid = child.pid;
      const timer = setTimeout(() => killGroup(pid, 'SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}
