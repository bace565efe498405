import pino, { type DestinationStream, type Logger } from 'pino';

/** Fields that may hold secrets; pino replaces them before a line is written (OC-CTRL-2041). */
const REDACTED_PATHS = ['req.headers.authorization', 'req.headers["x-api-key"]', 'headers.authorization', 'internalToken', 'apiKey'];

/** One root logger per process, JSON lines; children carry the job bindings (ORCH-3027). */
export function createLogger(name: string, destination?: DestinationStream): Logger {
  const options = { name, level: process.env['LOG_LEVEL'] ?? 'info', redact: { paths: REDACTED_PATHS, censor: '[redacted]' } };
  return destination ? pino(options, destination) : pino(options);
}
