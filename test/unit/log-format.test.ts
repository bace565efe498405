import pino from 'pino';
import { createLogger } from '../../platform/logger';
import { colourWanted, logFormat, prettyDestination, prettyLine } from '../../platform/log-format';
import { sdkLine } from '../../platform/temporal-sdk-log';
import { captureLogs } from '../support/log-capture';

/** 09:05:03.007 local time, so the expected clock text does not depend on the machine's time zone. */
const TIME = new Date(2026, 11, 6, 9, 5, 3, 7).getTime();
const plain = { colour: false };

function record(fields: Record<string, unknown>): string {
  return `${JSON.stringify({ level: 30, time: TIME, pid: 4242, hostname: 'vm', name: 'pool-worker', msg: 'pool replica ready', ...fields })}\n`;
}

/** The ORCH-3027 bindings a job's child logger carries on every line. */
const JOB_BINDINGS = {
  job_id: 't-1', session_id: 's-1', client_id: 'c-1', engine: 'llamacpp', pool_id: 'mock', replica_id: 'mock-r0', model_id: 'mock:tiny',
  quant: null, ctx: 2048, tensor_split: null, engine_version: 'mock-0.1.0', sampler_profile_version: 'v1', priority: 'interactive',
  kv_warmth: 'cold', queue_time_ms: 3, eviction_events: 0, oom_events: 0, driver_reset_events: 0,
};

describe('which form the console gets', () => {
  test('a terminal gets the human form, a pipe or file JSON', () => {
    expect(logFormat({}, true)).toBe('pretty');
    expect(logFormat({}, false)).toBe('json');
  });

  test('LOG_FORMAT forces either form; an unknown value falls back to the terminal test', () => {
    expect(logFormat({ LOG_FORMAT: 'json' }, true)).toBe('json');
    expect(logFormat({ LOG_FORMAT: 'pretty' }, false)).toBe('pretty');
    expect(logFormat({ LOG_FORMAT: ' JSON ' }, true)).toBe('json');
    expect(logFormat({ LOG_FORMAT: 'yaml' }, true)).toBe('pretty');
  });

  test('NO_COLOR (set and not empty) turns colour off; otherwise the terminal decides', () => {
    expect(colourWanted({ NO_COLOR: '1' }, true)).toBe(false);
    expect(colourWanted({ NO_COLOR: '' }, true)).toBe(true);
    expect(colourWanted({}, true)).toBe(true);
    expect(colourWanted({}, false)).toBe(false);
  });

  test('a logger given a destination writes JSON with every field, whatever LOG_FORMAT says (tests parse it)', () => {
    const previous = process.env['LOG_FORMAT'];
    process.env['LOG_FORMAT'] = 'pretty';
    try {
      const logs = captureLogs();
      createLogger('llama-orch', logs.stream).child(JOB_BINDINGS).info({ tokens_out: 4 }, 'task finished');
      expect(logs.lines()).toEqual([expect.objectContaining({ level: 30, name: 'llama-orch', msg: 'task finished', tokens_out: 4, ...JOB_BINDINGS })]);
    } finally {
      if (previous === undefined) delete process.env['LOG_FORMAT'];
      else process.env['LOG_FORMAT'] = previous;
    }
  });
});

describe('the human form of a line', () => {
  test('time, level name, component and message, without pid, hostname or numeric level', () => {
    expect(prettyLine(record({}), plain)).toBe('09:05:03.007 INFO  pool-worker pool replica ready\n');
  });

  test.each([
    [10, 'TRACE'],
    [20, 'DEBUG'],
    [30, 'INFO '],
    [40, 'WARN '],
    [50, 'ERROR'],
    [60, 'FATAL'],
  ])('level %i reads %s', (level, name) => {
    expect(prettyLine(record({ level }), plain)).toContain(` ${name} pool-worker `);
  });

  test('an info line shows the fields that identify the work, not the job bindings every line repeats', () => {
    const line = prettyLine(record({ ...JOB_BINDINGS, msg: 'task finished', tokens_out: 32, ttft_ms: 41, decode_time_ms: 320, tokens_in: 5 }), plain);
    expect(line).toBe('09:05:03.007 INFO  pool-worker task finished job_id=t-1 pool_id=mock replica_id=mock-r0 tokens_out=32 ttft_ms=41 decode_time_ms=320\n');
  });

  test('a warning or error shows its own fields too, still without the job bindings; nulls are left out', () => {
    const line = prettyLine(record({ ...JOB_BINDINGS, level: 40, msg: 'task aborted: the replica stopped serving', code: 'WORKER_RESET', retried: true, last_error: null }), plain);
    expect(line).toBe('09:05:03.007 WARN  pool-worker task aborted: the replica stopped serving job_id=t-1 pool_id=mock replica_id=mock-r0 code=WORKER_RESET priority=interactive retried=true\n');
  });

  test('an error shows its message (quoted when it has spaces), and its code when the line has none', () => {
    const err = { type: 'Error', message: 'connect ECONNREFUSED 127.0.0.1:7233', stack: 'Error: connect…\n    at …', code: 'ECONNREFUSED' };
    const line = prettyLine(record({ level: 50, name: 'llama-orch', msg: 'stop failed; killing what is left', err }), plain);
    expect(line).toBe('09:05:03.007 ERROR llama-orch  stop failed; killing what is left err="connect ECONNREFUSED 127.0.0.1:7233" code=ECONNREFUSED\n');
  });

  test('a supervised child\'s pid is shown with it; the process\'s own pid is not', () => {
    // pino writes both `pid`s; JSON.parse keeps the last one, the child's.
    const json = `{"level":50,"time":${TIME},"pid":100,"hostname":"vm","name":"llama-orch","child":"temporal","pid":200,"exit":"signal SIGKILL","restart_in_ms":250,"msg":"child process exited; restarting"}\n`;
    expect(prettyLine(json, plain)).toBe('09:05:03.007 ERROR llama-orch  child process exited; restarting child=temporal pid=200 exit="signal SIGKILL" restart_in_ms=250\n');
  });

  test('the SDK\'s own lines say they come from the Temporal SDK; our workflow code logging through it does not', () => {
    const worker = prettyLine(record({ level: 40, msg: 'Activity failed', sdk: true, sdkComponent: 'worker', activityType: 'runTask', attempt: 2, err: { message: 'boom' } }), plain);
    expect(worker).toBe('09:05:03.007 WARN  pool-worker Temporal SDK: Activity failed activityType=runTask attempt=2 err=boom\n');
    const workflow = prettyLine(record({ level: 40, msg: 'reload rolled back', sdk: true, sdkComponent: 'workflow', poolId: 'mock', workflowId: 'w' }), plain);
    expect(workflow).toBe('09:05:03.007 WARN  pool-worker reload rolled back poolId=mock\n');
  });

  test('colour: level and component painted on a colour terminal, no escape codes without', () => {
    const coloured = prettyLine(record({ level: 50, job_id: 't-1' }), { colour: true });
    expect(coloured).toContain('\x1b[31mERROR\x1b[0m');
    expect(coloured).toContain('\x1b[36mpool-worker');
    expect(prettyLine(record({ level: 50, job_id: 't-1' }), plain)).not.toContain('\x1b[');
  });

  test('a line that is not a JSON object passes through unchanged', () => {
    expect(prettyLine('not json\n', plain)).toBe('not json\n');
    expect(prettyLine('[1,2]\n', plain)).toBe('[1,2]\n');
  });

  test('through pino: a child logger\'s bindings and an Error under err', () => {
    const logs = captureLogs();
    const logger = pino({ name: 'gateway-1', level: 'info' }, prettyDestination(logs.stream, plain));
    logger.child(JOB_BINDINGS).error({ err: new Error('replica gone') }, 'could not start the task workflow');
    expect(logs.text()).toMatch(/^\d\d:\d\d:\d\d\.\d{3} ERROR gateway-1   could not start the task workflow job_id=t-1 pool_id=mock replica_id=mock-r0 priority=interactive err="replica gone"\n$/);
  });
});

describe('the Temporal SDK\'s lines', () => {
  test('"No workflows registered" (our activity-only workers) is demoted to debug with a note, so LOG_LEVEL=info never shows it', () => {
    const line = sdkLine({ level: 'WARN', message: 'No workflows registered, not polling for workflow tasks', meta: { sdkComponent: 'worker', taskQueue: 'orch-pool-mock-v1' } });
    expect(line).toEqual({
      level: 'debug',
      message: 'No workflows registered, not polling for workflow tasks',
      fields: { sdkComponent: 'worker', taskQueue: 'orch-pool-mock-v1', sdk: true, note: expect.stringContaining('activity-only worker') },
    });
    for (const format of ['json', 'pretty'] as const) {
      const logs = captureLogs();
      const logger = format === 'json' ? pino({ level: 'info' }, logs.stream) : pino({ level: 'info' }, prettyDestination(logs.stream, plain));
      logger[line.level](line.fields, line.message);
      expect(logs.text()).toBe('');
    }
  });

  test('any other SDK warning or error keeps its level, and its error keeps message and stack under err', () => {
    const error = new Error('Connection refused');
    const line = sdkLine({ level: 'ERROR', message: 'Activity failed', meta: { sdkComponent: 'worker', error, activityType: 'runTask' } });
    expect(line).toEqual({ level: 'error', message: 'Activity failed', fields: { sdkComponent: 'worker', activityType: 'runTask', sdk: true, err: error } });
    expect(sdkLine({ level: 'WARN', message: 'Failed to poll', meta: { sdkComponent: 'core' } }).level).toBe('warn');
    const logs = captureLogs();
    pino({ level: 'info' }, logs.stream)[line.level](line.fields, line.message);
    expect(logs.lines()[0]).toEqual(expect.objectContaining({ level: 50, sdk: true, err: expect.objectContaining({ message: 'Connection refused', stack: expect.any(String) }) }));
  });
});
