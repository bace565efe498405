import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { temporal } from '@temporalio/proto';
import { Worker } from '@temporalio/worker';
import { request } from 'undici';
import { buildExamplePlugin } from '../../policy/tools/build-plugin';
import type { TaskResult } from '../../core/task-workflow-contract';
import { parsePrometheusText } from '../support/prometheus-text';
import { readStream, type ReceivedEvent } from '../support/sse-client';
import { startTestStack, taskRequest, waitForReadyReplicas, type TestStack } from '../support/stack';

// Two single-slot replicas with a decode long enough that concurrent tasks overlap.
const POOL = { replicas: 2, inProcessReplicas: 2, slots: 1, interTokenMs: 20, ctx: 8192 } as const;
// A generous wait: a pinned task never falls back in this test, so the placement alone decides.
const PLACEMENT = { placement: { affinity_wait_ms: 30_000 } } as const;

let withPlugin: TestStack;
let withBuiltin: TestStack;
let shortWait: TestStack;

beforeAll(async () => {
  const path = await buildExamplePlugin('max-tokens-cap');
  // A roomy call budget: on a loaded test machine a 25 ms timeout would fall back to the built-in policy.
  withPlugin = await startTestStack({ ...POOL, policyPlugin: { id: 'max-tokens-cap', version: '0.1.0', path, limits: { call_timeout_ms: 5_000 } }, custom: PLACEMENT });
  withBuiltin = await startTestStack({ ...POOL, custom: PLACEMENT });
  shortWait = await startTestStack({ ...POOL, interTokenMs: 40, policyPlugin: { id: 'max-tokens-cap', version: '0.1.0', path, limits: { call_timeout_ms: 5_000 } }, custom: { placement: { affinity_wait_ms: 100 } } });
  await Promise.all([waitForReadyReplicas(withPlugin, 2), waitForReadyReplicas(withBuiltin, 2), waitForReadyReplicas(shortWait, 2)]);
}, 120_000);
afterAll(async () => {
  await withPlugin?.stop();
  await withBuiltin?.stop();
  await shortWait?.stop();
});

let lastBodies: Record<string, unknown>[] = [];
let lastStreams: ReceivedEvent[][] = [];

/** Submits `count` tasks at once and returns the replica each one ran on (from its `dispatched` metrics frame). */
async function runConcurrently(stack: TestStack, count: number, maxTokens = 8): Promise<string[]> {
  const bodies = Array.from({ length: count }, () => taskRequest(stack, { max_tokens: maxTokens }));
  const streams = await Promise.all(
    bodies.map(async (body) => {
      const response = await request(`${stack.url}/v1/tasks`, { method: 'POST', headers: { 'content-type': 'application/json', ...stack.authHeaders }, body: JSON.stringify(body) });
      await response.body.dump();
      expect(response.statusCode).toBe(202);
      return readStream(`${stack.url}/v1/tasks/${String(body['task_id'])}/stream`).finished;
    }),
  );
  lastBodies = bodies;
  lastStreams = streams;
  return streams.map((events) => replicaOf(events));
}

function replicaOf(events: readonly ReceivedEvent[]): string {
  expect(events.at(-1)?.event).toBe('end');
  const dispatched = events.filter((event) => event.event === 'metrics' && event.data['phase'] === 'dispatched');
  return String(dispatched.at(-1)?.data['replica_id']);
}

test('ORCH-3008 OC-POLICY-4001 (issue 6): the example plugin\'s place() pins every task to its chosen replica; the built-in spreads them', async () => {
  const pinned = await runConcurrently(withPlugin, 6);
  expect(new Set(pinned)).toEqual(new Set([`${withPlugin.poolId}-r1`]));
  const admitted = withPlugin.logs.lines().filter((line) => line['msg'] === 'task admitted' && line['placement_reason'] === 'policy-pin');
  expect(admitted).toHaveLength(6);
  const decisions = withPlugin.logs.lines().filter((line) => line['policy_fn'] === 'place');
  expect(decisions.map((line) => line['decided_by'])).toEqual(Array(6).fill('plugin'));

  const spread = await runConcurrently(withBuiltin, 6);
  expect(new Set(spread)).toEqual(new Set([`${withBuiltin.poolId}-r0`, `${withBuiltin.poolId}-r1`]));
  // The built-in pins nothing (a fast start on whichever replica is free is not a pin).
  expect(withBuiltin.logs.lines().some((line) => line['msg'] === 'task admitted' && line['placement_reason'] === 'policy-pin')).toBe(false);
}, 60_000);

test('ORCH-3009/3023: a placed task its replica cannot take within the wait falls back to the pool queue, kv_warmth=false and kv_migrated=false surfaced', async () => {
  // Three tasks pinned to r1, whose lane runs one at a time: at least two wait past 100 ms and fall back.
  await runConcurrently(shortWait, 3, 10);
  const results = await Promise.all(lastBodies.map((body) => shortWait.client.workflow.getHandle(`task-${String(body['task_id'])}`).result() as Promise<TaskResult>));
  const pinnedTo = `${shortWait.poolId}-r1`;
  expect(results.every((result) => result.state === 'completed' && result.placement?.replicaId === pinnedTo && result.placement.reason === 'policy-pin')).toBe(true);
  expect(results.every((result) => result.kvWarmth === false && result.kvMigrated === false)).toBe(true);
  const fellBack = results.filter((result) => result.placement?.laneHit === false);
  expect(fellBack.length).toBeGreaterThanOrEqual(2);
  expect(results.filter((result) => result.placement?.laneHit === true).every((result) => result.replicaId === pinnedTo)).toBe(true);
  for (const [index, result] of results.entries()) {
    const dispatched = (lastStreams[index] ?? []).filter((event) => event.event === 'metrics' && event.data['phase'] === 'dispatched').at(-1);
    expect(dispatched?.data).toEqual(expect.objectContaining({ kv_warmth: false, kv_migrated: false, placed_on: pinnedTo, lane_hit: result.placement?.laneHit }));
    // A fallback is a new attempt to the gateway, so a lane attempt that had started would be reset, not merged.
    if (result.placement?.laneHit === false) expect(dispatched?.data['attempt']).toBe(2);
  }
  // The lane hit rate, as an operator sees it.
  const response = await request(`${shortWait.url}/metrics`, { headers: shortWait.authHeaders });
  const { samples } = parsePrometheusText(await response.body.text());
  const count = (outcome: string) =>
    samples.find((sample) => sample.name === 'placement_decisions_total' && sample.labels['pool_id'] === shortWait.poolId && sample.labels['outcome'] === outcome && sample.labels['reason'] === 'policy-pin')?.value;
  expect(count('fallback')).toBe(fellBack.length);
  expect(count('lane')).toBe(3 - fellBack.length);

  // The lane path is workflow code too: both kinds of history replay (ORCH_RECORD_HISTORIES=1 keeps them
  // as fixtures for the replay test of temporal-lifecycle.test.ts).
  const bundle = readFileSync(String(process.env['ORCH_TEST_WORKFLOW_BUNDLE']), 'utf8');
  for (const [index, result] of results.entries()) {
    const history = await shortWait.client.workflow.getHandle(`task-${String(lastBodies[index]?.['task_id'])}`).fetchHistory();
    const name = result.placement?.laneHit ? 'task-placed-lane' : 'task-placed-fallback';
    await Worker.runReplayHistory({ workflowBundle: { code: bundle } }, history, name);
    if (process.env['ORCH_RECORD_HISTORIES'] === '1') {
      const plain = temporal.api.history.v1.History.toObject(temporal.api.history.v1.History.fromObject(history), { longs: String, enums: String, bytes: String });
      writeFileSync(join(__dirname, '..', 'fixtures', 'histories', `${name}.json`), JSON.stringify(plain, null, 1));
    }
  }
}, 60_000);
