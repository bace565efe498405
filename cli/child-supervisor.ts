import { spawn, type ChildProcess } from 'node:child_process';
import type { Logger } from 'pino';
import { terminateChild } from '../platform/child-process';

export interface SupervisedChild {
  stop(): Promise<void>;
}

const MAX_BACKOFF_MS = 30_000;

/** Runs a child process and restarts it with exponential backoff when it exits on its own. */
export function superviseChild(name: string, args: readonly string[], env: NodeJS.ProcessEnv, logger: Logger): SupervisedChild {
  let child: ChildProcess | undefined;
  let stopping = false;
  let backoffMs = 1_000;
  let restartTimer: NodeJS.Timeout | undefined;

  const launch = (): void => {
    const startedAt = Date.now();
    child = spawn(process.execPath, args, { stdio: ['ignore', 'inherit', 'inherit'], env });
    child.once('exit', (code, signal) => {
      child = undefined;
      if (stopping) return;
      if (Date.now() - startedAt > 60_000) backoffMs = 1_000;
      logger.error({ child: name, code, signal, restart_in_ms: backoffMs }, 'child process exited; restarting');
      restartTimer = setTimeout(launch, backoffMs);
      backoffMs = Math.min(MAX_BACKOFF_MS, backoffMs * 2);
    });
  };
  launch();

  return {
    stop: () => {
      stopping = true;
      if (restartTimer) clearTimeout(restartTimer);
      return child ? terminateChild(child, 15_000) : Promise.resolve();
    },
  };
}
