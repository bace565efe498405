/** How the CLI prints: aligned tables and plain lines in a terminal, one JSON document with `--json`. */
export interface CliOutput {
  readonly json: boolean;
  /** A table of rows (columns in the order of the first row's keys), or the rows as JSON. */
  table(rows: readonly Readonly<Record<string, unknown>>[]): void;
  /** A result: a line of text for people, the value as JSON for programs. */
  result(text: string, value: unknown): void;
  /** Progress on stderr: one line rewritten in place on a terminal, a line per change elsewhere. */
  progress(line: string): void;
  endProgress(): void;
}

export function cliOutput(json: boolean): CliOutput {
  let lastProgress = '';
  const tty = process.stderr.isTTY === true;
  return {
    json,
    table: (rows) => {
      if (json) {
        process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
        return;
      }
      if (rows.length === 0) {
        process.stdout.write('(none)\n');
        return;
      }
      const columns = Object.keys(rows[0] ?? {});
      const cells = rows.map((row) => columns.map((column) => cellText(row[column])));
      const widths = columns.map((column, index) => Math.max(column.length, ...cells.map((row) => (row[index] ?? '').length)));
      const line = (values: readonly string[]): string => values.map((value, index) => value.padEnd(widths[index] ?? 0)).join('  ').trimEnd();
      process.stdout.write(`${[line(columns.map((column) => column.toUpperCase())), ...cells.map(line)].join('\n')}\n`);
    },
    result: (text, value) => {
      process.stdout.write(json ? `${JSON.stringify(value, null, 2)}\n` : `${text}\n`);
    },
    progress: (line) => {
      if (line === lastProgress) return;
      lastProgress = line;
      process.stderr.write(tty ? `\r\u001b[2K${line}` : `${line}\n`);
    },
    endProgress: () => {
      if (tty && lastProgress !== '') process.stderr.write('\n');
      lastProgress = '';
    },
  };
}

function cellText(value: unknown): string {
  if (value === null || value === undefined) return '-';
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return JSON.stringify(value);
}
