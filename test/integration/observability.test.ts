import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import { LABEL_BUDGETS, METRICS } from '../../api/observability/metrics';
import { parsePrometheusText } from '../support/prometheus-text';
import { readStream, waitFor } from '../support/sse-client';
import { startTestStack, taskRequest, type TestStack } from '../support/stack';

interface LintMetric {
  readonly name: string;
  readonly type: string;
  readonly labels: readonly string[];
}
const lint = JSON.parse(readFileSync(join(__dirname, '..', '..', 'ci', 'metrics.lint.json'), 'utf8')) as {
  required_metrics: LintMetric[];
  optional_metrics: LintMetric[];
  label_cardinality_budget: Record<string, number>;
};

let stack: TestStack;
let completedTaskId: string;
let metricsText: string;

async function submit(body: Record<string, unknown>) {
  const response = await request(`${stack.url}/v1/tasks`, { method: 'POST', headers: { 'content-type': 'application/json', ...stack.authHeaders }, body: JSON.stringify(body) });
  return { status: response.statusCode, body: (await response.body.json()) as Record<string, unknown> };
}

/**
 * Traffic that exercises every lint metric: a completed task, a cancelled one, a refused one (400), a
 * backpressure 429 (batch has no queue room), then one scrape of the live /metrics.
 */
beforeAll(async () => {
  stack = await startTestStack({ slots: 2, interTokenMs: 20, priorities: [{ name: 'batch', queue_capacity: 0 }] });
  const completed = taskRequest(stack, { max_tokens: 4 });
  completedTaskId = String(completed['task_id']);
  expect((await submit(completed)).status).toBe(202);
  await readStream(`${stack.url}/v1/tasks/${completedTaskId}/stream`).finished;

  const cancelled = taskRequest(stack, { max_tokens: 500 });
  expect((await submit(cancelled)).status).toBe(202);
  const reading = readStream(`${stack.url}/v1/tasks/${String(cancelled['task_id'])}/stream`);
  await waitFor(() => reading.events.some((event) => event.event === 'token'), 20_000, 'a token of the task to cancel');
  const cancel = await request(`${stack.url}/v1/tasks/${String(cancelled['task_id'])}/cancel`, { method: 'POST', headers: stack.authHeaders });
  await cancel.body.dump();
  expect(cancel.statusCode).toBe(204);
  await reading.finished;

  expect((await submit(taskRequest(stack, { model_ref: 'no-such-model' }))).status).toBe(400);
  expect((await submit(taskRequest(stack, { priority: 'batch' }))).status).toBe(429);

  const scrape = await request(`${stack.url}/metrics`);
  expect(scrape.statusCode).toBe(200);
  expect(scrape.headers['content-type']).toMatch(/^text\/plain/);
  metricsText = await scrape.body.text();
});
afterAll(async () => {
  await stack.stop();
});

describe('OC-METRICS-7101: names and label sets conform to ci/metrics.lint.json', () => {
  test('OC-METRICS-7101: the lint file keeps the spec §4.1 metrics and budgets verbatim', () => {
    const spec = {
      tasks_enqueued_total: ['engine', 'engine_version', 'pool_id', 'replica_id', 'priority'],
      tasks_started_total: ['engine', 'engine_version', 'pool_id', 'replica_id', 'priority'],
      tasks_canceled_total: ['engine', 'engine_version', 'pool_id', 'replica_id', 'reason'],
      tasks_rejected_total: ['engine', 'reason'],
      queue_depth: ['engine', 'engine_version', 'pool_id', 'priority'],
      latency_first_token_ms: ['engine', 'engine_version', 'pool_id', 'priority'],
      latency_decode_ms: ['engine', 'engine_version', 'pool_id', 'priority'],
      tokens_in_total: ['engine', 'engine_version', 'pool_id', 'replica_id'],
      tokens_out_total: ['engine', 'engine_version', 'pool_id', 'replica_id'],
    };
    for (const [name, labels] of Object.entries(spec)) expect(lint.required_metrics.find((metric) => metric.name === name)?.labels).toEqual(labels);
    expect(lint.label_cardinality_budget).toEqual(expect.objectContaining({ engine: 4, engine_version: 64, pool_id: 256, replica_id: 1024, priority: 8, reason: 16 }));
  });

  test('OC-METRICS-7101 OC-METRICS-7102: the lint file and the one metrics module declare the same metrics, label sets and budgets', () => {
    const declared = Object.values(METRICS).map((metric) => ({ name: metric.name, type: metric.type, labels: [...metric.labels], optional: 'optional' in metric }));
    const linted = [...lint.required_metrics.map((metric) => ({ ...metric, optional: false })), ...lint.optional_metrics.map((metric) => ({ ...metric, optional: true }))].map(
      ({ name, type, labels, optional }) => ({ name, type, labels: [...labels], optional }),
    );
    const byName = (left: { name: string }, right: { name: string }) => left.name.localeCompare(right.name);
    expect(declared.sort(byName)).toEqual(linted.sort(byName));
    expect(LABEL_BUDGETS).toEqual(lint.label_cardinality_budget);
  });

  test('ORCH-3028 OC-CORE-1041 OC-CTRL-2051 OC-METRICS-7101: a live /metrics after traffic has every required metric with exactly its label set', () => {
    const { types, samples } = parsePrometheusText(metricsText);
    for (const metric of [...lint.required_metrics, ...lint.optional_metrics]) {
      const required = lint.required_metrics.includes(metric);
      const series = metric.type === 'histogram' ? `${metric.name}_count` : metric.name;
      const found = samples.filter((sample) => sample.name === series);
      if (!required && found.length === 0) continue;
      expect({ metric: metric.name, type: types.get(metric.name) }).toEqual({ metric: metric.name, type: metric.type });
      expect({ metric: metric.name, present: found.length > 0 }).toEqual({ metric: metric.name, present: true });
      for (const sample of found) expect({ metric: metric.name, labels: Object.keys(sample.labels).sort() }).toEqual({ metric: metric.name, labels: [...metric.labels].sort() });
    }
  });

  test('ORCH-3028: the traffic shows up: queue depth per class, reject and drop reasons, cancels, tokens, latency buckets, errors by class', () => {
    const { samples } = parsePrometheusText(metricsText);
    const value = (name: string, labels: Record<string, string>) =>
      samples.filter((sample) => sample.name === name && Object.entries(labels).every(([key, wanted]) => sample.labels[key] === wanted)).reduce((sum, sample) => sum + sample.value, 0);
    const pool = { pool_id: stack.poolId };
    expect(samples.filter((sample) => sample.name === 'queue_depth' && sample.labels['pool_id'] === stack.poolId).map((sample) => sample.labels['priority']).sort()).toEqual(['batch', 'interactive']);
    expect(value('tasks_enqueued_total', pool)).toBe(2);
    expect(value('tasks_started_total', pool)).toBe(2);
    expect(value('tasks_canceled_total', { ...pool, reason: 'client' })).toBe(1);
    expect(value('tasks_rejected_total', { engine: 'llamacpp', reason: 'INVALID_PARAMS' })).toBe(1);
    expect(value('tasks_rejected_total', { engine: 'llamacpp', reason: 'ADMISSION_REJECT' })).toBe(1);
    expect(value('admission_backpressure_events_total', { engine: 'llamacpp', policy: 'reject' })).toBe(1);
    expect(value('tokens_out_total', pool)).toBeGreaterThanOrEqual(4);
    expect(value('latency_first_token_ms_count', pool)).toBe(2);
    expect(value('latency_decode_ms_count', pool)).toBe(1);
    expect(value('latency_first_token_ms_bucket', { ...pool, le: '+Inf' })).toBe(2);
    expect(value('errors_total', { code: 'INVALID_PARAMS', surface: 'http' })).toBeGreaterThanOrEqual(1);
    expect(value('host_memory_total_bytes', {})).toBeGreaterThan(0);
    expect(value('slo_target_ratio', { priority: 'interactive', objective: 'ttft' })).toBe(0.95);
    expect(value('slo_attainment_ratio', { priority: 'interactive', objective: 'errors' })).toBe(1);
  });
});

test('ORCH-3027 OC-CORE-1040: the gateway\'s lifecycle lines of a job, parsed as JSON, carry every required field', () => {
  const required = [
    'job_id', 'session_id', 'client_id', 'engine', 'pool_id', 'replica_id', 'model_id', 'quant', 'ctx', 'tensor_split', 'engine_version',
    'sampler_profile_version', 'kv_warmth', 'queue_time_ms', 'decode_time_ms', 'tokens_in', 'tokens_out', 'eviction_events', 'oom_events', 'driver_reset_events',
  ];
  // The gateway's lines are the ones with the full record (they also carry `priority`).
  const lines = stack.logs.lines().filter((line) => line['job_id'] === completedTaskId && 'priority' in line && (line['msg'] === 'task dispatched' || line['msg'] === 'task finished'));
  expect(lines.map((line) => line['msg'])).toEqual(['task dispatched', 'task finished']);
  for (const line of lines) {
    expect(required.filter((field) => !(field in line))).toEqual([]);
    expect(line).toEqual(expect.objectContaining({ client_id: 'tenant-a', pool_id: stack.poolId, engine: 'llamacpp', ctx: 1024, sampler_profile_version: 'v1' }));
    expect(line['replica_id']).not.toBe('unassigned');
    expect(typeof line['queue_time_ms']).toBe('number');
  }
  const finished = lines[1] ?? {};
  expect(finished).toEqual(expect.objectContaining({ outcome: 'completed', tokens_out: 4, decode_time_ms: expect.any(Number), eviction_events: 0 }));
});

test('ORCH-3027: every other line about the job (the pool worker\'s included) carries the job\'s identity fields', () => {
  const identity = ['job_id', 'session_id', 'client_id', 'engine', 'pool_id', 'replica_id', 'model_id', 'ctx', 'engine_version', 'sampler_profile_version'];
  const lines = stack.logs.lines().filter((line) => line['job_id'] === completedTaskId && line['msg'] !== 'task admitted');
  expect(lines.length).toBeGreaterThanOrEqual(3);
  for (const line of lines) expect({ msg: line['msg'], missing: identity.filter((field) => !(field in line)) }).toEqual({ msg: line['msg'], missing: [] });
});

test('ORCH-3027 OC-CORE-1040: the pool worker\'s end line of a job, parsed as JSON, carries quant, tensor_split, kv_warmth, tokens in/out and the replica\'s event counters', () => {
  const workerLines = stack.logs.lines().filter((line) => line['job_id'] === completedTaskId && !('priority' in line));
  for (const line of workerLines) expect({ msg: line['msg'], quant: 'quant' in line, tensor_split: line['tensor_split'] }).toEqual({ msg: line['msg'], quant: true, tensor_split: null });
  const decoded = workerLines.find((line) => line['msg'] === 'task decoded');
  expect(decoded).toEqual(
    expect.objectContaining({
      // The mock has no GGUF and its model name carries no quant tag: unknown, not guessed.
      quant: null,
      kv_warmth: false,
      tokens_in: expect.any(Number),
      tokens_out: 4,
      decode_time_ms: expect.any(Number),
      eviction_events: 0,
      oom_events: 0,
      driver_reset_events: 0,
    }),
  );
  expect(decoded?.['tokens_in']).toBeGreaterThan(0);
  // Issue 13: the gateway's end line and tokens_in_total carry the engine's count, not prompt bytes ÷ 4.
  const finished = stack.logs.lines().find((line) => line['job_id'] === completedTaskId && line['msg'] === 'task finished');
  expect(finished?.['tokens_in']).toBe(decoded?.['tokens_in']);
});
