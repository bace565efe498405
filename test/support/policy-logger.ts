import type { PolicyLogger } from '../../policy/host/policy-host';

export interface LogLine {
  readonly level: 'info' | 'warn' | 'error';
  readonly object: Record<string, unknown>;
  readonly message: string;
}

/** A logger that keeps what it is given, so tests can assert on log lines (OC-POLICY-4020). */
export function recordingLogger(): PolicyLogger & { readonly lines: LogLine[] } {
  const lines: LogLine[] = [];
  return {
    lines,
    info: (object, message) => lines.push({ level: 'info', object, message }),
    warn: (object, message) => lines.push({ level: 'warn', object, message }),
    error: (object, message) => lines.push({ level: 'error', object, message }),
  };
}
