import { request } from 'undici';
import { startMockEngine } from '../../gpu-workers/engines/mock-llamacpp/mock-engine';
import { waitFor } from '../support/sse-client';
import { startTestStack, type TestStack } from '../support/stack';

/**
 * Issue 13 item 2: an `external` engine (one llama-orch does not start) that dies makes its replica
 * Unready within seconds — polled health, three misses in a row — instead of staying Ready and taking
 * tasks nothing can run.
 */
let stack: TestStack | undefined;
afterAll(async () => {
  await stack?.stop();
});

interface Health {
  ready: boolean;
  last_error: string | null;
  metrics: { replicas: { replica_id: string; state: string }[] };
}

async function health(testStack: TestStack): Promise<Health> {
  const response = await request(`${testStack.url}/v1/pools/${testStack.poolId}/health`, { headers: testStack.authHeaders });
  return (await response.body.json()) as Health;
}

test('issue 13: an external engine that stops answering makes its replica Unready, and health says why', async () => {
  const engine = await startMockEngine({ ttftMs: 1, interTokenMs: 1, slots: 2 });
  stack = await startTestStack({ custom: { engineRuntime: { kind: 'external', url: engine.url } } });
  const started = stack;
  expect((await health(started)).ready).toBe(true);
  await engine.close();
  let seen: Health | undefined;
  await waitFor(async () => {
    seen = await health(started);
    return seen.metrics.replicas.every((replica) => replica.state !== 'ready');
  }, 20_000, 'the replica to leave Ready');
  expect(seen?.ready).toBe(false);
  expect(seen?.last_error).toContain('the external engine failed 3 health checks in a row');
}, 60_000);
