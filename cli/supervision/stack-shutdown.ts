import type { Logger } from 'pino';

export interface StackShutdown {
  /** Stops the stack because the stack cannot heal itself; exits 1 with `reason` printed. */
  fail(reason: string): void;
  /** Stops the stack as SIGTERM does; resolves never (the process exits). */
  stop(): Promise<void>;
  /** True once a stop or a failure has begun (a child's exit is then expected). */
  readonly stopping: boolean;
}

/**
 * Ctrl-C, SIGTERM or a failure run `stop` once, bounded (issue 15 item 4): past `boundMs`, or on a second
 * Ctrl-C, `forceKill` ends whatever still runs and the process exits 1. A clean stop exits 0; a failure
 * exits 1 with its reason on stderr, so an outer supervisor (systemd, Kubernetes) starts a clean stack.
 */
export function handleStackShutdown(logger: Logger, options: { readonly boundMs: number; stop(): Promise<void>; forceKill(): void }): StackShutdown {
  let stopping = false;
  const begin = (exitCode: number, why: Record<string, unknown>): void => {
    if (stopping) return;
    stopping = true;
    logger.info(why, 'stopping the stack');
    const bound = setTimeout(() => {
      logger.error({ bound_ms: options.boundMs }, 'stop ran past its bound; killing what is left');
      options.forceKill();
      process.exit(1);
    }, options.boundMs);
    options.stop().then(
      () => {
        clearTimeout(bound);
        process.exit(exitCode);
      },
      (error: unknown) => {
        clearTimeout(bound);
        logger.error({ err: error }, 'stop failed; killing what is left');
        options.forceKill();
        process.exit(1);
      },
    );
  };
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping) {
      logger.warn({ signal }, 'second signal: killing every process of the stack now');
      options.forceKill();
      process.exit(1);
    }
    begin(0, { signal });
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    stop: () => {
      begin(0, { reason: 'the parent process is gone' });
      return new Promise<void>(() => undefined);
    },
    fail: (reason) => {
      if (stopping) return;
      process.stderr.write(`llama-orch cannot continue: ${reason}\n`);
      begin(1, { reason });
    },
    get stopping() {
      return stopping;
    },
  };
}
