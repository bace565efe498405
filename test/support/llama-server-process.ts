import { execFile, spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { freePort } from '../../cli/free-port';
import { terminateChild } from '../../platform/child-process';

/** A llama-server child process on a loopback port, started for one test file. */
export interface LlamaServerProcess {
  readonly baseUrl: string;
  readonly port: number;
  /** The command line it was started with, for failure messages. */
  readonly args: readonly string[];
  /** The tail of its stdout and stderr (llama-server logs there), for failure messages. */
  output(): string;
  /** SIGTERM, then SIGKILL if it has not exited within `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

export interface StartLlamaServerOptions {
  readonly binary: string;
  readonly modelPath: string;
  /** Everything but -m, --host and --port. */
  readonly args: readonly string[];
  /** How long model loading may take before /health answers 200. Default 60 s. */
  readonly readyTimeoutMs?: number;
}

const OUTPUT_TAIL_CHARS = 64 * 1024;

/**
 * Every long flag `--help` mentions. Unknown flags are fatal to llama-server and the flag set moves
 * between builds, so optional flags are passed only when the pinned build lists them.
 */
export async function llamaServerFlags(binary: string): Promise<ReadonlySet<string>> {
  const { stdout, stderr } = await promisify(execFile)(binary, ['--help'], { maxBuffer: 16 * 1024 * 1024, timeout: 30_000, encoding: 'utf8' });
  return new Set(`${stdout}\n${stderr}`.match(/--[a-z0-9][a-z0-9-]*/g) ?? []);
}

/** Starts llama-server and resolves once GET /health answers 200 (the model is loaded). */
export async function startLlamaServer(options: StartLlamaServerOptions): Promise<LlamaServerProcess> {
  const port = await freePort();
  const args = ['-m', options.modelPath, '--host', '127.0.0.1', '--port', String(port), ...options.args];
  const child = spawn(options.binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let tail = '';
  const keep = (chunk: Buffer): void => {
    tail = (tail + chunk.toString('utf8')).slice(-OUTPUT_TAIL_CHARS);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  let spawnError: Error | undefined;
  child.once('error', (error) => {
    spawnError = error;
  });

  const server: LlamaServerProcess = {
    baseUrl: `http://127.0.0.1:${port}`,
    port,
    args,
    output: () => tail,
    stop: (graceMs = 5_000) => terminateChild(child, graceMs),
  };

  const deadline = Date.now() + (options.readyTimeoutMs ?? 60_000);
  let lastStatus = 'no answer';
  while (Date.now() < deadline) {
    if (spawnError !== undefined) throw spawnError;
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`llama-server exited (${child.exitCode ?? child.signalCode}) before it was ready: ${args.join(' ')}\n${tail}`);
    }
    try {
      const response = await fetch(`${server.baseUrl}/health`, { signal: AbortSignal.timeout(2_000) });
      await response.arrayBuffer();
      if (response.status === 200) return server;
      lastStatus = `HTTP ${response.status}`;
    } catch (error) {
      lastStatus = error instanceof Error ? error.message : String(error);
    }
    await sleep(50);
  }
  await server.stop();
  throw new Error(`llama-server not ready within ${options.readyTimeoutMs ?? 60_000} ms (${lastStatus}): ${args.join(' ')}\n${tail}`);
}
