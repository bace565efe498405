/**
 * What the test doubles' CLIs share (mock-llamacpp/mock-engine-main.ts, tgi-double/tgi-double-main.ts): a
 * parent reads one JSON `listening` line on stdout; everything else, the loud banner included, goes to stderr.
 */

export function nonNegativeInt(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const parsed = Number(value);
  if (!Number.isSafeInteger(parsed) || parsed < 0) throw new Error(`--${name} must be a non-negative integer, got "${value}"`);
  return parsed;
}

/** Announces the running double (banner on stderr, `listening` on stdout) and closes it on SIGTERM or SIGINT. */
export function serveUntilSignalled(name: string, running: { readonly url: string; close(): Promise<void> }, banner: string): void {
  process.stderr.write(`${banner}\n`);
  process.stdout.write(`${JSON.stringify({ event: 'listening', url: running.url })}\n`);
  const shutdown = (signal: NodeJS.Signals): void => {
    process.stderr.write(`${name}: ${signal}, closing\n`);
    running.close().then(
      () => {
        process.exitCode = 0;
      },
      (error: unknown) => {
        process.stderr.write(`${name}: close failed: ${String(error)}\n`);
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', shutdown);
  process.once('SIGINT', shutdown);
}

/** Runs a CLI's main; a failure prints the cause and the usage, and exits 1. */
export function runDoubleCli(name: string, usage: string, main: () => Promise<void>): void {
  main().catch((error: unknown) => {
    process.stderr.write(`${name}: ${error instanceof Error ? error.message : String(error)}\n${usage}\n`);
    process.exit(1);
  });
}
