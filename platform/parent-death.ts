import { execFileSync } from 'node:child_process';

let setprivSupport: boolean | undefined;

/** Whether util-linux `setpriv` with `--pdeathsig` (util-linux ≥ 2.33) is on PATH; probed once. */
function hasSetprivPdeathsig(): boolean {
  if (setprivSupport === undefined) {
    try {
      setprivSupport = process.platform === 'linux' && execFileSync('setpriv', ['--help'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).includes('--pdeathsig');
    } catch {
      setprivSupport = false;
    }
  }
  return setprivSupport;
}

export interface WrappedCommand {
  /** What to spawn (setpriv, or the program itself). */
  readonly command: string;
  /** The program that ends up running: its pid's argv[0] once setpriv has exec'd it. */
  readonly program: string;
  readonly args: readonly string[];
  /** False where the kernel cannot be asked (no setpriv, not Linux): the child outlives a killed parent. */
  readonly boundToParent: boolean;
}

/**
 * The command line that starts `command` with a parent-death signal (Linux `PR_SET_PDEATHSIG` through
 * `setpriv`, which sets it and then execs, so the pid is the command's own). The kernel sends `signal` to
 * the child the moment the process that spawned it dies, SIGKILL included; no helper stays running
 * (ADR 2026-12-06-no-orphans). Node spawns from its main thread, whose life is the process's, so the
 * signal fires on the death of the process and not of some thread.
 */
export function boundToParent(command: string, args: readonly string[], signal: 'SIGKILL' | 'SIGTERM' = 'SIGKILL'): WrappedCommand {
  if (!hasSetprivPdeathsig()) return { command, program: command, args, boundToParent: false };
  return { command: 'setpriv', program: command, args: ['--pdeathsig', signal, '--', command, ...args], boundToParent: true };
}
