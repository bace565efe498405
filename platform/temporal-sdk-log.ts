import type { LogEntry } from '@temporalio/worker';

/** pino's level names for the SDK's. */
export type SdkLineLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error';

export interface SdkLine {
  readonly level: SdkLineLevel;
  readonly message: string;
  readonly fields: Record<string, unknown>;
}

interface SdkNote {
  readonly message: RegExp;
  /** Where the line goes instead of the SDK's level: it is expected in this system, not a fault. */
  readonly level: SdkLineLevel;
  readonly note: string;
}

/**
 * SDK lines that read like faults but are how we run the SDK. Only messages known to be harmless are here:
 * anything else keeps the SDK's level, so a real error is never hidden.
 */
const SDK_NOTES: readonly SdkNote[] = [
  {
    message: /^No workflows registered, not polling for workflow tasks$/,
    level: 'debug',
    note: 'activity-only worker by design: pool workers run activities, the gateway process runs the workflows',
  },
  {
    message: /^No activities registered, not polling for activity tasks$/,
    level: 'debug',
    note: 'workflow-only worker by design',
  },
];

const LEVELS: Readonly<Record<LogEntry['level'], SdkLineLevel>> = { TRACE: 'trace', DEBUG: 'debug', INFO: 'info', WARN: 'warn', ERROR: 'error' };

/**
 * One SDK log entry as a line of ours: marked `sdk: true`, its `error` under pino's `err` (so the JSON keeps the
 * message and stack instead of `{}`), and the lines in SDK_NOTES demoted with a note saying why.
 */
export function sdkLine(entry: Pick<LogEntry, 'level' | 'message' | 'meta'>): SdkLine {
  const { error, ...meta } = entry.meta ?? {};
  const fields: Record<string, unknown> = { ...meta, sdk: true, ...(error !== undefined ? { err: error } : {}) };
  const known = SDK_NOTES.find((candidate) => candidate.message.test(entry.message));
  if (!known) return { level: LEVELS[entry.level], message: entry.message, fields };
  return { level: known.level, message: entry.message, fields: { ...fields, note: known.note } };
}
