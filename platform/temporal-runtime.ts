import { DefaultLogger, Runtime, type LogLevel } from '@temporalio/worker';
import type { Logger } from 'pino';

let installed = false;

/** Routes the Temporal SDK's own logs into our pino logger at WARN and above; once per process. */
export function installTemporalRuntime(logger: Logger, level: LogLevel = 'WARN'): void {
  if (installed) return;
  installed = true;
  try {
    Runtime.install({
      logger: new DefaultLogger(level, (entry) => {
        const fields = { ...entry.meta, sdk: true };
        if (entry.level === 'ERROR') logger.error(fields, entry.message);
        else logger.warn(fields, entry.message);
      }),
    });
  } catch {
    // Already installed by an earlier caller in this process: keep that one.
  }
}
