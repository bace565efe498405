import pino, { type DestinationStream, type Logger } from 'pino';
import { colourWanted, logFormat, prettyDestination } from './log-format';

/** Fields that may hold secrets; pino replaces them before a line is written (OC-CTRL-2041). */
const REDACTED_PATHS = ['req.headers.authorization', 'req.headers["x-api-key"]', 'headers.authorization', 'internalToken', 'apiKey'];

/**
 * One root logger per process; children carry the job bindings (ORCH-3027). JSON lines, except on a terminal
 * (or LOG_FORMAT=pretty), where each record is one human line (platform/log-format.ts). A given destination
 * always gets JSON: tests parse it.
 */
export function createLogger(name: string, destination?: DestinationStream): Logger {
  const options = { name, level: process.env['LOG_LEVEL'] ?? 'info', redact: { paths: REDACTED_PATHS, censor: '[redacted]' } };
  if (destination) return pino(options, destination);
  if (logFormat(process.env, process.stdout.isTTY) === 'json') return pino(options);
  const colour = colourWanted(process.env, process.stdout.isTTY && process.stdout.hasColors());
  // Synchronous, like a terminal: nothing is left in a buffer when the process exits.
  return pino(options, prettyDestination(pino.destination({ dest: 1, sync: true }), { colour }));
}
