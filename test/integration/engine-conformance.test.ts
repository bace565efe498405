import { readStream, tokensOf, waitFor } from '../support/sse-client';
import {
  cancelTask,
  conformanceTask,
  getJson,
  getText,
  runTask,
  startConformanceStack,
  submitTask,
  type ConformanceStack,
  type ConformanceTarget,
} from '../support/engine-conformance';
import { llamaCppDoubleTarget, llamaServerTarget } from '../support/conformance-targets/llamacpp';
import { tgiDoubleTarget } from '../support/conformance-targets/tgi';
import { tritonServerTarget } from '../support/conformance-targets/triton';
import { vllmTarget } from '../support/conformance-targets/vllm';

/**
 * Issue 12 item 5: the one conformance suite every engine adapter passes, through the whole stack (gateway,
 * Temporal workflow, pool worker, adapter, engine). The checks are the same for every target; what an engine
 * cannot do is declared as a capability of its adapter, never decided here by the engine's name.
 */
const TARGETS: readonly ConformanceTarget[] = [llamaServerTarget, llamaCppDoubleTarget, tgiDoubleTarget, tritonServerTarget, vllmTarget];

interface ReplicaHealth {
  readonly state: string;
  readonly engine_version: string | null;
  readonly mock_engine?: boolean;
}

describe.each(TARGETS.map((target) => [target.name, target] as const))('engine conformance — %s', (_name, target) => {
  let running: ConformanceStack;
  beforeAll(async () => {
    running = await startConformanceStack(target);
  }, target.provisionTimeoutMs + 180_000);
  afterAll(async () => {
    await running?.stop();
  });

  const engineAdapter = () => {
    const engine = running.stack.poolWorkers[0]?.engine;
    if (!engine) throw new Error('no Ready replica');
    return engine;
  };

  test('ORCH-3049 ORCH-3032 ORCH-3002: the replica is Ready only after the start-up self-test, and health reports the engine\'s own engine_version (and whether a test double serves)', async () => {
    const { stack, pool } = running;
    const health = (await getJson(stack, `/v1/pools/${stack.poolId}/health`)) as { ready: boolean; metrics: { mock_engine?: boolean; warning?: string; replicas: ReplicaHealth[] } };
    expect(health.ready).toBe(true);
    const replica = health.metrics.replicas[0];
    expect(replica?.state).toBe('ready');
    if (typeof pool.engineVersion === 'string') expect(replica?.engine_version).toBe(pool.engineVersion);
    else expect(replica?.engine_version).toMatch(pool.engineVersion);
    expect(health.metrics.mock_engine === true).toBe(pool.testDouble);
    expect(health.metrics.replicas.every((each) => (each.mock_engine === true) === pool.testDouble)).toBe(true);
    if (pool.testDouble) expect(health.metrics.warning).toContain(`test double of ${target.engine}`);
    // The self-test ran on this engine before Ready: its line precedes the replica's Ready line.
    const lines = stack.logs.lines().map((line) => String(line['msg']));
    const selfTest = lines.findIndex((msg) => msg === 'start-up self-test passed');
    expect(selfTest).toBeGreaterThanOrEqual(0);
  });

  test('ORCH-2001 ORCH-3054 OC-ADAPT-5001: a submitted task streams its tokens in order through the gateway and ends with tokens_out equal to what streamed', async () => {
    const { events } = await runTask(running, { max_tokens: 12 });
    const end = events.at(-1);
    expect(end?.event).toBe('end');
    const { indices } = tokensOf(events);
    expect(indices.length).toBeGreaterThan(0);
    expect(indices.length).toBeLessThanOrEqual(12);
    expect(indices).toEqual(indices.map((_index, position) => position));
    expect(end?.data['tokens_out']).toBe(indices.length);
    expect(events[0]?.event).toBe('started');
  });

  test('ORCH-3026 ORCH-3017 OC-CTRL-2012: a cancel mid-stream ends the stream canceled and the engine stops generating (its own counters stop, its sequence is free)', async () => {
    const { stack, pool } = running;
    const body = conformanceTask(running, { max_tokens: pool.longTaskTokens });
    const taskId = String(body['task_id']);
    expect(await submitTask(stack, body)).toBe(202);
    const reading = readStream(`${stack.url}/v1/tasks/${taskId}/stream`);
    await waitFor(() => reading.events.filter((event) => event.event === 'token').length >= 3, 60_000, 'three tokens');
    expect(await cancelTask(stack, taskId)).toBe(204);
    const events = await reading.finished;
    expect(events.at(-1)?.data['canceled']).toBe(true);
    expect(tokensOf(events).indices.length).toBeLessThan(pool.longTaskTokens);

    const adapter = engineAdapter();
    // The adapter asks the engine itself (slots, or its running-request count) whether the work is gone.
    await adapter.confirmStopped(undefined, 10_000);
    // And the engine's own generated-token counter stands still: nothing decodes for the cancelled task.
    const metrics = adapter.nativeMetrics;
    if (metrics) {
      const before = metrics.generatedTokens(await metrics.scrape());
      await new Promise((resolve) => setTimeout(resolve, 750));
      expect(metrics.generatedTokens(await metrics.scrape())).toBe(before);
    }
    // The freed sequence serves the next task.
    const next = await runTask(running, { max_tokens: 4 });
    expect(next.events.at(-1)?.event).toBe('end');
    expect(next.events.at(-1)?.data['canceled']).not.toBe(true);
  });

  test('ORCH-3027 OC-ADAPT-5001: the gateway\'s metrics count the engine\'s tasks under its engine label, and the engine\'s own metrics count the tokens it generated', async () => {
    const { stack } = running;
    const { events } = await runTask(running, { max_tokens: 6 });
    const streamed = tokensOf(events).indices.length;
    const exposition = await getText(stack, '/metrics');
    const engine = String(stack.config.pools[0]?.engine);
    const sample = exposition.split('\n').find((line) => line.startsWith('tokens_out_total{') && line.includes(`engine="${engine}"`) && line.includes(`pool_id="${stack.poolId}"`));
    expect(sample).toBeDefined();
    expect(Number(sample?.split(' ').at(-1))).toBeGreaterThanOrEqual(streamed);
    const metrics = engineAdapter().nativeMetrics;
    if (metrics) expect(metrics.generatedTokens(await metrics.scrape())).toBeGreaterThanOrEqual(streamed);
  });
});
