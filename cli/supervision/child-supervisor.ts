import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { SupervisedProcessRole } from '../../core/supervised-process';
import { terminateChild } from '../../platform/child-process';
import { boundToParent } from '../../platform/parent-death';
import { PidFile } from '../../platform/pid-file';
import type { SupervisionBoard } from './supervision-board';

export interface ChildSpec {
  /** Unique in the stack: the board's key and the pid file's name. */
  readonly name: string;
  readonly role: SupervisedProcessRole;
  readonly command: string;
  readonly args: readonly string[];
  readonly env: NodeJS.ProcessEnv;
  /** Where stdout and stderr go: this process's own, or appended to a file. */
  readonly output: 'inherit' | { readonly logFile: string };
  /** Opens a Node IPC channel to the child (its `process.send`), for a `ready` that listens to it. */
  readonly ipc?: boolean | undefined;
  /** Resolves once an instance serves; a rejection kills it and counts as a failed start. Absent: spawned is serving. */
  readonly ready?: ((child: ChildProcess) => Promise<void>) | undefined;
  readonly stopGraceMs: number;
  /** The first restart's delay; it doubles while instances die young, up to MAX_BACKOFF_MS. */
  readonly firstBackoffMs: number;
  /** Starts in a row that never served, after which the supervisor gives up; unbounded when absent. */
  readonly maxFailedStarts?: number | undefined;
}

export interface SupervisionContext {
  readonly board: SupervisionBoard;
  readonly logger: Logger;
  /** `<data_dir>/run`: each live child has a pid file under `children/`, for the next start to reap. */
  readonly runDir: string;
  /** The supervisor gave up on a child: the stack cannot heal itself and should end (issue 15 item 1). */
  readonly onGiveUp: (name: string, reason: string) => void;
}

export interface SupervisedChild {
  /** Resolves when the first instance serves; rejects if it does not (the supervisor then stops). */
  readonly firstStart: Promise<void>;
  pid(): number | undefined;
  stop(): Promise<void>;
  /** SIGKILL now (a stop that ran past its bound). */
  kill(): void;
}

const MAX_BACKOFF_MS = 30_000;
/**
 * An instance that served this long died of something else than its start: the next restart starts from
 * the first backoff again. A child with a readiness check has proven itself once ready; one without must
 * live longer, or a crash loop would restart it at the first backoff forever.
 */
const HEALTHY_AFTER_READY_MS = 1_000;
const HEALTHY_WITHOUT_READY_CHECK_MS = 10_000;

/**
 * Runs a child process and starts it again, with backoff, whenever it exits on its own. Each instance is
 * bound to this process's life (platform/parent-death.ts) and has a pid file while it lives.
 */
export function superviseChild(spec: ChildSpec, context: SupervisionContext): SupervisedChild {
  const { board, logger } = context;
  const pidFile = new PidFile(join(context.runDir, 'children', `${spec.name}.json`), logger);
  let child: ChildProcess | undefined;
  let stopping = false;
  let backoffMs = spec.firstBackoffMs;
  let failedStarts = 0;
  let restartTimer: NodeJS.Timeout | undefined;
  let settleFirst: { resolve: () => void; reject: (error: Error) => void } | undefined;
  const firstStart = new Promise<void>((resolve, reject) => {
    settleFirst = { resolve, reject };
  });
  board.register(spec.name, spec.role);

  const launch = (restarted: boolean): void => {
    const command = boundToParent(spec.command, spec.args);
    const output = spec.output === 'inherit' ? 'inherit' : 'pipe';
    // setpriv execs the program with the channel's descriptor still open, so IPC survives the wrapper.
    const instance = spawn(command.command, command.args, { stdio: ['ignore', output, output, ...(spec.ipc ? (['ipc'] as const) : [])], env: spec.env });
    child = instance;
    if (spec.output !== 'inherit') {
      const log = createWriteStream(spec.output.logFile, { flags: 'a' });
      instance.stdout?.pipe(log);
      instance.stderr?.pipe(log);
    }
    if (instance.pid !== undefined) pidFile.record(instance.pid, command.program);
    board.transition(spec.name, 'starting', { pid: instance.pid ?? null, restarted });
    let servedAt: number | undefined;
    let notServing: string | undefined;
    const onServing = (): void => {
      if (child !== instance || stopping) return;
      servedAt = Date.now();
      failedStarts = 0;
      board.transition(spec.name, 'running');
      if (restarted) logger.warn({ child: spec.name, pid: instance.pid }, 'restarted and serving again');
      settleFirst?.resolve();
      settleFirst = undefined;
    };
    const onNotServing = (error: unknown): void => {
      notServing = error instanceof Error ? error.message : String(error);
      logger.error({ child: spec.name, err: error }, 'did not start serving; stopping this instance');
      instance.kill('SIGKILL');
    };
    if (spec.ready) spec.ready(instance).then(onServing, onNotServing);
    else onServing();
    instance.once('exit', (code, signal) => {
      if (instance.pid !== undefined) pidFile.clear(instance.pid);
      const exit = notServing ?? (signal ? `signal ${signal}` : `code ${String(code)}`);
      if (child === instance) child = undefined;
      if (stopping) {
        board.transition(spec.name, 'stopped', { pid: null, exit });
        return;
      }
      if (settleFirst) {
        // The first instance never served: a configuration or installation problem, not a crash to heal.
        board.transition(spec.name, 'failed', { pid: null, exit });
        settleFirst.reject(new Error(`${spec.name} did not start: ${exit}`));
        settleFirst = undefined;
        return;
      }
      if (servedAt === undefined) failedStarts += 1;
      if (spec.maxFailedStarts !== undefined && failedStarts >= spec.maxFailedStarts) {
        board.transition(spec.name, 'failed', { pid: null, exit });
        context.onGiveUp(spec.name, `${failedStarts} starts in a row did not serve (last: ${exit})`);
        return;
      }
      const healthyAfterMs = spec.ready ? HEALTHY_AFTER_READY_MS : HEALTHY_WITHOUT_READY_CHECK_MS;
      if (servedAt !== undefined && Date.now() - servedAt > healthyAfterMs) backoffMs = spec.firstBackoffMs;
      board.transition(spec.name, 'restarting', { pid: null, exit });
      logger.error({ child: spec.name, pid: instance.pid, exit, restart_in_ms: backoffMs }, 'child process exited; restarting');
      restartTimer = setTimeout(() => launch(true), backoffMs);
      backoffMs = Math.min(MAX_BACKOFF_MS, backoffMs * 2);
    });
  };
  launch(false);

  return {
    firstStart,
    pid: () => child?.pid,
    stop: async () => {
      stopping = true;
      if (restartTimer) clearTimeout(restartTimer);
      board.transition(spec.name, 'stopping');
      if (child) await terminateChild(child, spec.stopGraceMs);
      board.transition(spec.name, 'stopped', { pid: null });
    },
    kill: () => {
      stopping = true;
      if (restartTimer) clearTimeout(restartTimer);
      child?.kill('SIGKILL');
    },
  };
}

/**
 * What a stack that died without stopping left running (its pid files under `<runDir>/children`), killed
 * before this one starts anything (issue 15 item 3). Resolves with the pids it killed.
 */
export async function reapLeftoverChildren(runDir: string, logger: Logger): Promise<number[]> {
  const directory = join(runDir, 'children');
  let names: string[];
  try {
    names = readdirSync(directory).filter((name) => name.endsWith('.json'));
  } catch {
    return [];
  }
  const reaped = await Promise.all(names.map((name) => new PidFile(join(directory, name), logger).reapOrphan()));
  return reaped.filter((pid): pid is number => pid !== undefined);
}
