import type { ChildProcess } from 'node:child_process';

/**
 * SIGTERM, then SIGKILL if the child has not exited within `graceMs`; resolves once it has exited.
 * A child that already exited resolves at once.
 */
export function terminateChild(child: ChildProcess, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const killTimer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(killTimer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}
