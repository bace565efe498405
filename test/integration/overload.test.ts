import { request } from 'undici';
import { readStream, waitFor } from '../support/sse-client';
import { startTestStack, taskRequest, TEST_AUTH_HEADERS, type TestStack } from '../support/stack';

let stack: TestStack;
beforeAll(async () => {
  // A slow engine with two slots behind a queue of 8: most of a burst of 200 must be refused.
  stack = await startTestStack({ slots: 2, ttftMs: 50, interTokenMs: 20, queue: { capacity: 8, full_policy: 'reject' } });
});
afterAll(async () => {
  await stack.stop();
});

const SUBMISSIONS = 200;

async function submit(body: Record<string, unknown>) {
  const response = await request(`${stack.url}/v1/tasks`, { method: 'POST', headers: { 'content-type': 'application/json', ...TEST_AUTH_HEADERS }, body: JSON.stringify(body) });
  return { status: response.statusCode, headers: response.headers, body: (await response.body.json()) as Record<string, unknown> };
}

test('ORCH-3051 OC-CORE-1001 ORCH-2007: under a burst of 200 concurrent submissions every answer is 202 or a typed 429, and no accepted task is lost', async () => {
  const heapBefore = process.memoryUsage().heapUsed;
  const bodies = Array.from({ length: SUBMISSIONS }, () => taskRequest(stack, { max_tokens: 4, deadline_ms: 120_000 }));
  const answers = await Promise.all(bodies.map((body) => submit(body)));

  expect(answers.filter((answer) => answer.status !== 202 && answer.status !== 429).map((answer) => [answer.status, answer.body])).toEqual([]);
  const refused = answers.filter((answer) => answer.status === 429);
  const accepted = bodies.filter((_, index) => answers[index]?.status === 202);
  // The queue bound holds (8 queued, a few more already dispatched to the 2 slots); the rest are refused.
  expect(accepted.length).toBeGreaterThanOrEqual(8);
  expect(refused.length).toBeGreaterThan(SUBMISSIONS / 2);
  for (const answer of refused) {
    expect(answer.headers['retry-after']).toMatch(/^\d+$/);
    expect(answer.headers['x-backoff-ms']).toMatch(/^\d+$/);
    expect(answer.body).toEqual(expect.objectContaining({ code: 'ADMISSION_REJECT', policy_label: 'reject', retriable: true, engine: 'llamacpp', pool_id: stack.poolId }));
  }

  // Every accepted task reaches a terminal `end` on its own stream.
  const endings = await Promise.all(accepted.map((body) => readStream(`${stack.url}/v1/tasks/${String(body['task_id'])}/stream`).finished));
  expect(endings.map((events) => events.at(-1)?.event)).toEqual(accepted.map(() => 'end'));
  expect(endings.map((events) => events.at(-1)?.data['tokens_out'])).toEqual(accepted.map(() => 4));

  // Bounded gateway state: refusals left no stream behind, and the queue drains to nothing.
  expect(stack.gateway.hub.size).toBe(accepted.length);
  await waitFor(() => {
    const depth = stack.gateway.admission.depth(stack.poolId);
    return depth.interactive === 0 && depth.batch === 0;
  }, 20_000, 'the queue to drain');
  // Generous on purpose (no forced GC here): 200 requests must not cost the gateway tens of MB.
  expect(process.memoryUsage().heapUsed - heapBefore).toBeLessThan(64 * 2 ** 20);
});
