import { randomUUID } from 'node:crypto';
import { request } from 'undici';
import { PROVISION_TIMEOUT_MS, cpuReplicaOptions, llamaServerPool, provisionSyntheticEngine } from '../support/llama-server-pool';
import { readStream, tokensOf, waitFor, type ReceivedEvent } from '../support/sse-client';
import { startTestStack, taskRequest, type TestStack } from '../support/stack';

/**
 * ORCH-3022 on the real engine: a best_effort session's second turn is served from the slot's cached
 * prefix (llama-server's own timings.cache_n), and DELETE erases the slot through llama-server's
 * `POST /slots/<id>?action=erase` (started with --slot-save-path under the data dir).
 */
let stack: TestStack;

beforeAll(async () => {
  await provisionSyntheticEngine();
  stack = await startTestStack({ ctx: 512, inProcessReplicas: 0, custom: { ...llamaServerPool({ slots: 2 }), determinism: 'best_effort' }, replicaOptions: cpuReplicaOptions });
  await stack.addPoolReplica(0);
}, PROVISION_TIMEOUT_MS);
afterAll(async () => {
  await stack?.stop();
});

async function turn(sessionId: string, prompt: string): Promise<ReceivedEvent[]> {
  const body = taskRequest(stack, { session_id: sessionId, prompt, ctx: 512, max_tokens: 8, determinism: 'best_effort', deadline_ms: 60_000 });
  const response = await request(`${stack.url}/v1/tasks`, { method: 'POST', headers: { 'content-type': 'application/json', ...stack.authHeaders }, body: JSON.stringify(body) });
  await response.body.dump();
  expect(response.statusCode).toBe(202);
  const events = await readStream(`${stack.url}/v1/tasks/${String(body['task_id'])}/stream`).finished;
  expect(events.at(-1)?.event).toBe('end');
  return events;
}

const kvOf = (events: readonly ReceivedEvent[]) => events.find((event) => event.event === 'metrics' && event.data['phase'] === 'kv')?.data;

test('ORCH-3022 (llama-server): the second best_effort turn reuses the slot\'s KV; kv_bytes from GGUF; DELETE erases the slot', async () => {
  const sessionId = randomUUID();
  const prompt = 'Once upon a time in a land of queues';
  const first = await turn(sessionId, prompt);
  const firstKv = kvOf(first);
  expect(firstKv).toEqual(expect.objectContaining({ kv_warmth: false, kv_migrated: false }));
  expect(Number(firstKv?.['tokens_cached'])).toBeGreaterThan(0);
  // 2 (K, V) × layers × KV heads × head dim × 2 bytes (f16), per cached token.
  expect(Number(firstKv?.['kv_bytes']) % Number(firstKv?.['tokens_cached'])).toBe(0);
  expect(Number(firstKv?.['kv_bytes'])).toBeGreaterThan(Number(firstKv?.['tokens_cached']));

  const second = await turn(sessionId, `${prompt}${tokensOf(first).text} and then`);
  const secondKv = kvOf(second);
  expect(secondKv?.['kv_warmth']).toBe(true);
  expect(Number(secondKv?.['tokens_cached'])).toBeGreaterThan(Number(firstKv?.['tokens_cached']));

  const response = await request(`${stack.url}/v1/sessions/${sessionId}`, { method: 'DELETE', headers: stack.authHeaders });
  await response.body.dump();
  expect(response.statusCode).toBe(204);
  // Logged only after llama-server answered 200 to POST /slots/<id>?action=erase (the adapter throws otherwise).
  await waitFor(() => stack.logs.lines().some((line) => line['msg'] === 'session KV erased' && line['session_id'] === sessionId), 30_000, 'llama-server to erase the slot');
}, 180_000);
