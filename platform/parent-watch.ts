import type { Logger } from 'pino';

/** How often a child checks that the process that started it is still there. */
const CHECK_INTERVAL_MS = 1_000;

/**
 * A child of `npm start` ends when its parent dies, however the parent died (SIGKILL included): Linux
 * re-parents an orphan, so a changed parent pid means ours is gone (issue 15: no orphans). Polling the
 * pid needs no helper binary and no signal the parent must remember to send; the cost is up to a second
 * of delay. `stop` runs once, then the process exits non-zero.
 */
export function exitWithParent(logger: Logger, stop: () => Promise<void>): void {
  const parent = process.ppid;
  const timer = setInterval(() => {
    if (process.ppid === parent) return;
    clearInterval(timer);
    logger.error({ parent_pid: parent }, 'the process that started this one is gone; stopping');
    const exit = (): never => process.exit(1);
    stop().then(exit, exit);
  }, CHECK_INTERVAL_MS);
  timer.unref();
}
