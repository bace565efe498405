import { DefaultLogger, Runtime, makeTelemetryFilterString, type LogLevel } from '@temporalio/worker';
import type { Logger } from 'pino';
import { sdkLine } from './temporal-sdk-log';

let installed = false;

/**
 * Routes the Temporal SDK's own logs, the Rust core's included, into our pino logger at WARN and above, once
 * per process: they print in the process's log format (JSON or the console form), and the ones that only
 * describe how we run the SDK are demoted to debug (platform/temporal-sdk-log.ts).
 */
export function installTemporalRuntime(logger: Logger, level: LogLevel = 'WARN'): void {
  if (installed) return;
  installed = true;
  try {
    Runtime.install({
      logger: new DefaultLogger(level, (entry) => {
        const line = sdkLine(entry);
        logger[line.level](line.fields, line.message);
      }),
      // Without `forward`, core writes its own text lines to stderr, past our logger and its format.
      telemetryOptions: { logging: { forward: {}, filter: makeTelemetryFilterString({ core: level, other: 'ERROR' }) } },
    });
  } catch {
    // Already installed by an earlier caller in this process: keep that one.
  }
}
