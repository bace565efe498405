import type { DestinationStream } from 'pino';

/** `json`: pino's lines as they are (ORCH-3027). `pretty`: one short human line per record. */
export type LogFormat = 'json' | 'pretty';

/** LOG_FORMAT wins; otherwise a person at a terminal gets the human form, and pipes and files get JSON. */
export function logFormat(env: NodeJS.ProcessEnv, stdoutIsTTY: boolean): LogFormat {
  const asked = env['LOG_FORMAT']?.trim().toLowerCase();
  if (asked === 'json' || asked === 'pretty') return asked;
  return stdoutIsTTY ? 'pretty' : 'json';
}

/** NO_COLOR (no-color.org: set and not empty) turns colour off whatever the terminal supports. */
export function colourWanted(env: NodeJS.ProcessEnv, terminalHasColours: boolean): boolean {
  const noColour = env['NO_COLOR'];
  if (noColour !== undefined && noColour !== '') return false;
  return terminalHasColours;
}

export interface PrettyOptions {
  readonly colour: boolean;
}

const LEVELS: ReadonlyMap<number, { readonly name: string; readonly colour: string }> = new Map([
  [10, { name: 'TRACE', colour: '90' }],
  [20, { name: 'DEBUG', colour: '34' }],
  [30, { name: 'INFO', colour: '32' }],
  [40, { name: 'WARN', colour: '33' }],
  [50, { name: 'ERROR', colour: '31' }],
  [60, { name: 'FATAL', colour: '1;31' }],
]);
const WARN = 40;

/** Shown on any line that has them, in this order: what the line is about and how it went. */
const PICKED = [
  'job_id', 'task_id', 'pool_id', 'replica_id', 'child', 'pid', 'state', 'event', 'decision', 'outcome', 'code', 'status',
  'operation_id', 'model_ref', 'tokens_out', 'ttft_ms', 'decode_time_ms', 'exit', 'restart_in_ms', 'last_error', 'taskQueue', 'activityType', 'attempt',
];
/** Last on the line, after any other field, so the reason reads at the end. */
const TRAILING = ['err', 'note'];

/** Never shown: pino's envelope and the SDK's markers (the JSON form keeps them). */
const ENVELOPE = new Set(['level', 'time', 'pid', 'hostname', 'name', 'msg', 'v', 'sdk', 'sdkComponent']);

/**
 * The job bindings every line of a job repeats (ORCH-3027), the replica facts every state line repeats, and
 * the SDK's ids: a warning or error shows its other fields too, and these would bury them. `job_id` and its
 * peers are in PICKED.
 */
const CONTEXT = new Set([
  'session_id', 'client_id', 'engine', 'model_id', 'quant', 'ctx', 'tensor_split', 'engine_version', 'sampler_profile_version',
  'kv_warmth', 'queue_time_ms', 'eviction_events', 'oom_events', 'driver_reset_events', 'ecc_events', 'tokens_in',
  'namespace', 'isLocal', 'activityId', 'workflowId', 'workflowType', 'runId', 'workflowRunId', 'target', 'spanContexts',
  'correlation_id', 'restarts', 'breaker_open', 'cpu_inference_override', 'mock_engine', 'model_digest',
]);

/** One pino JSON line → one human line with its newline; a line that is not a JSON object passes through unchanged. */
export function prettyLine(line: string, options: PrettyOptions): string {
  let record: unknown;
  try {
    record = JSON.parse(line);
  } catch {
    return line;
  }
  if (typeof record !== 'object' || record === null || Array.isArray(record)) return line;
  return `${formatRecord(record as Record<string, unknown>, options)}\n`;
}

function formatRecord(record: Record<string, unknown>, options: PrettyOptions): string {
  const paint = (codes: string, text: string): string => (options.colour ? `\x1b[${codes}m${text}\x1b[0m` : text);
  const levelNumber = typeof record['level'] === 'number' ? record['level'] : 30;
  const level = LEVELS.get(levelNumber) ?? { name: String(record['level']), colour: '0' };
  const time = typeof record['time'] === 'number' ? clockTime(record['time']) : '--:--:--.---';
  const component = typeof record['name'] === 'string' ? record['name'] : '-';
  const message = `${fromSdkItself(record) ? 'Temporal SDK: ' : ''}${typeof record['msg'] === 'string' ? record['msg'] : ''}`;
  const fields = shownFields(record, levelNumber >= WARN).map(([key, value]) => `${paint('2', `${key}=`)}${value}`);
  return [paint('2', time), paint(level.colour, level.name.padEnd(5)), paint('36', component.padEnd(11)), message, ...fields].join(' ');
}

/** The SDK's own lines (its worker and Rust core), not our workflow code logging through it. */
function fromSdkItself(record: Record<string, unknown>): boolean {
  return record['sdk'] === true && (record['sdkComponent'] === 'worker' || record['sdkComponent'] === 'core');
}

function shownFields(record: Record<string, unknown>, all: boolean): [string, string][] {
  // pino's own `pid` is noise, but a supervised child's (`child`, then its `pid`) is what an operator looks for.
  const picked = PICKED.filter((key) => key in record && (key !== 'pid' || 'child' in record));
  const rest = all ? Object.keys(record).filter((key) => !ENVELOPE.has(key) && !CONTEXT.has(key) && !PICKED.includes(key) && !TRAILING.includes(key)) : [];
  const shown: [string, string][] = [];
  for (const key of [...picked, ...rest, ...TRAILING]) {
    const value = record[key];
    if (value === null || value === undefined) continue;
    if (key === 'err') shown.push(...errorFields(value, 'code' in record));
    else shown.push([key, quoted(value)]);
  }
  return shown;
}

/** pino's error serializer gives `{ type, message, stack, code? }`: the message is what a person reads. */
function errorFields(err: unknown, hasCode: boolean): [string, string][] {
  if (typeof err !== 'object' || err === null) return [['err', quoted(err)]];
  const { message, code } = err as { message?: unknown; code?: unknown };
  const fields: [string, string][] = [['err', quoted(typeof message === 'string' && message !== '' ? message : err)]];
  if (!hasCode && (typeof code === 'string' || typeof code === 'number')) fields.push(['code', quoted(code)]);
  return fields;
}

/** Bare when it cannot be misread (no spaces, quotes or `=`), else JSON-quoted; objects compact and cut short. */
function quoted(value: unknown): string {
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (typeof value === 'string') return /^[^\s"=]+$/.test(value) ? value : JSON.stringify(value);
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 200 ? `${text.slice(0, 199)}…` : text;
}

/** HH:MM:SS.mmm in local time: what the clock on the operator's wall says. */
function clockTime(epochMs: number): string {
  const date = new Date(epochMs);
  const two = (n: number): string => String(n).padStart(2, '0');
  return `${two(date.getHours())}:${two(date.getMinutes())}:${two(date.getSeconds())}.${String(date.getMilliseconds()).padStart(3, '0')}`;
}

/** A pino destination that writes each record to `target` in the human form. */
export function prettyDestination(target: { write(text: string): unknown }, options: PrettyOptions): DestinationStream {
  return { write: (line: string) => void target.write(prettyLine(line, options)) };
}
