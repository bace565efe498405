import { Writable } from 'node:stream';

export interface LogCapture {
  readonly stream: Writable;
  /** Every line written so far, parsed as JSON (a line that is not JSON fails the test). */
  lines(): Record<string, unknown>[];
  text(): string;
}

/** Collects a pino logger's output so tests can assert on log lines as JSON. */
export function captureLogs(): LogCapture {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      chunks.push(chunk.toString('utf8'));
      callback();
    },
  });
  const text = (): string => chunks.join('');
  return {
    stream,
    text,
    lines: () =>
      text()
        .split('\n')
        .filter((line) => line.length > 0)
        .map((line) => JSON.parse(line) as Record<string, unknown>),
  };
}
