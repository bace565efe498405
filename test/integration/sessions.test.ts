import { randomUUID } from 'node:crypto';
import { request } from 'undici';
import { readStream, tokensOf, waitFor, type ReceivedEvent } from '../support/sse-client';
import { parsePrometheusText } from '../support/prometheus-text';
import { startTestStack, taskRequest, waitForReadyReplicas, type TestStack } from '../support/stack';

// Two replicas with room to spare (so the session's replica always has a free slot) and a roomy lane wait.
let pool: TestStack;
// One replica with two slots and a short session TTL: evictions and expiry.
let small: TestStack;
// Two single-slot replicas with slow decode and a short lane wait: a busy session replica.
let busy: TestStack;

beforeAll(async () => {
  pool = await startTestStack({ replicas: 2, inProcessReplicas: 2, slots: 4, interTokenMs: 5, custom: { placement: { affinity_wait_ms: 5_000 } } });
  small = await startTestStack({ slots: 2, custom: { sessions: { ttl_ms: 400, max_turns: 8 } } });
  busy = await startTestStack({ replicas: 2, inProcessReplicas: 2, slots: 1, interTokenMs: 20, custom: { placement: { affinity_wait_ms: 300 } } });
  await Promise.all([waitForReadyReplicas(pool, 2), waitForReadyReplicas(busy, 2)]);
}, 120_000);
afterAll(async () => {
  await pool?.stop();
  await small?.stop();
  await busy?.stop();
});

interface Turn {
  readonly status: number;
  readonly body: Record<string, unknown>;
  readonly events: ReceivedEvent[];
}

async function submit(stack: TestStack, body: Record<string, unknown>, headers: Record<string, string> = stack.authHeaders): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await request(`${stack.url}/v1/tasks`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  return { status: response.statusCode, body: (await response.body.json()) as Record<string, unknown> };
}

async function turn(stack: TestStack, overrides: Record<string, unknown>): Promise<Turn> {
  const body = taskRequest(stack, { max_tokens: 4, ...overrides });
  const admitted = await submit(stack, body);
  if (admitted.status !== 202) return { status: admitted.status, body: admitted.body, events: [] };
  const events = await readStream(`${stack.url}/v1/tasks/${String(body['task_id'])}/stream`).finished;
  expect(events.at(-1)).toEqual(expect.objectContaining({ event: 'end' }));
  return { status: 202, body: admitted.body, events };
}

function frame(events: readonly ReceivedEvent[], phase: string): Record<string, unknown> | undefined {
  return events.filter((event) => event.event === 'metrics' && event.data['phase'] === phase).at(-1)?.data;
}

async function getSession(stack: TestStack, id: string, headers: Record<string, string> = stack.authHeaders): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await request(`${stack.url}/v1/sessions/${id}`, { headers });
  return { status: response.statusCode, body: (await response.body.json()) as Record<string, unknown> };
}

async function deleteSession(stack: TestStack, id: string, headers: Record<string, string> = stack.authHeaders): Promise<number> {
  const response = await request(`${stack.url}/v1/sessions/${id}`, { method: 'DELETE', headers });
  await response.body.dump();
  return response.statusCode;
}

test('ORCH-3009 OC-CORE-1013: a session\'s turns all run on one replica while session-less tasks spread over both', async () => {
  const sessionId = randomUUID();
  // Background: two flows of one-turn sessions, one task after another, over the whole test.
  let stop = false;
  const others: string[] = [];
  const background = Array.from({ length: 2 }, async () => {
    while (!stop || others.length < 12) {
      const events = (await turn(pool, { max_tokens: 6 })).events;
      others.push(String(frame(events, 'dispatched')?.['replica_id']));
    }
  });
  const replicas: string[] = [];
  for (let index = 0; index < 5; index += 1) {
    const events = (await turn(pool, { session_id: sessionId, prompt: `turn ${index}`, determinism: 'best_effort' })).events;
    replicas.push(String(frame(events, 'dispatched')?.['replica_id']));
  }
  stop = true;
  await Promise.all(background);
  expect(new Set(replicas).size).toBe(1);
  expect(new Set(others)).toEqual(new Set([`${pool.poolId}-r0`, `${pool.poolId}-r1`]));
  const placed = pool.logs.lines().filter((line) => line['msg'] === 'task admitted' && line['session_id'] === sessionId);
  expect(placed.slice(1).every((line) => line['placement_reason'] === 'session-affinity' && line['placed_on'] === replicas[0])).toBe(true);
}, 90_000);

test('ORCH-3022 ORCH-2004/2005: a best_effort turn reuses its slot\'s KV (kv_warmth); GET shows it; DELETE erases the slot and forgets the session', async () => {
  const sessionId = randomUUID();
  const first = await turn(pool, { session_id: sessionId, prompt: 'Once upon a time', determinism: 'best_effort' });
  const firstKv = frame(first.events, 'kv');
  expect(firstKv).toEqual(expect.objectContaining({ kv_warmth: false, kv_migrated: false }));
  expect(Number(firstKv?.['kv_bytes'])).toBeGreaterThan(0);
  // The next turn's prompt extends what the slot holds (prompt + output), as a chat's history does.
  const second = await turn(pool, { session_id: sessionId, prompt: `Once upon a time${tokensOf(first.events).text} and then`, determinism: 'best_effort' });
  const secondKv = frame(second.events, 'kv');
  expect(secondKv?.['kv_warmth']).toBe(true);
  expect(secondKv?.['replica_id']).toBe(firstKv?.['replica_id']);
  expect(Number(secondKv?.['tokens_cached'])).toBeGreaterThan(Number(firstKv?.['tokens_cached']));

  const info = await getSession(pool, sessionId);
  expect(info.status).toBe(200);
  expect(info.body).toEqual(expect.objectContaining({ turns: 2, kv_warmth: true, kv_migrated: false, kv_bytes: secondKv?.['kv_bytes'], replica_id: secondKv?.['replica_id'] }));

  expect(await deleteSession(pool, sessionId)).toBe(204);
  expect((await getSession(pool, sessionId)).status).toBe(404);
  // Logged by the replica once the engine erased the slot (the mock's erase is unit-tested in mock-engine.test.ts).
  await waitFor(() => pool.logs.lines().some((line) => line['msg'] === 'session KV erased' && line['session_id'] === sessionId), 20_000, 'the eviction workflow to erase the slot');
  // A new session under the same id starts over: turn 1, no affinity, nothing warm.
  const third = await turn(pool, { session_id: sessionId, prompt: `Once upon a time${tokensOf(first.events).text} and then`, determinism: 'best_effort' });
  expect(frame(third.events, 'kv')?.['kv_warmth']).toBe(false);
  expect((await getSession(pool, sessionId)).body['turns']).toBe(1);
}, 60_000);

test('ORCH-3022 engines.md §1.6: a strict session never reuses the cache (byte-exactness first), so its turns are not held for their replica', async () => {
  const sessionId = randomUUID();
  const first = await turn(pool, { session_id: sessionId, prompt: 'Strictly', determinism: 'strict' });
  const second = await turn(pool, { session_id: sessionId, prompt: `Strictly${tokensOf(first.events).text} more`, determinism: 'strict' });
  expect(frame(second.events, 'kv')?.['kv_warmth']).toBe(false);
  // Not held for the session's replica: no affinity placement (a fast start on whichever replica is free is fine).
  expect(frame(second.events, 'dispatched')?.['placement_reason']).not.toBe('session-affinity');
  // The same session with best_effort turns is placed on its replica.
  const warm = randomUUID();
  await turn(pool, { session_id: warm, prompt: 'Loosely', determinism: 'best_effort' });
  const placed = await turn(pool, { session_id: warm, prompt: 'Loosely again', determinism: 'best_effort' });
  expect(frame(placed.events, 'dispatched')?.['placement_reason']).toBe('session-affinity');
}, 60_000);

test('ORCH-3021 ORCH-2004: the 9th turn is refused with 400; GET shows turns and a shrinking TTL; other tenants get 404', async () => {
  const sessionId = randomUUID();
  await turn(pool, { session_id: sessionId });
  const early = await getSession(pool, sessionId);
  for (let index = 2; index <= 8; index += 1) expect((await turn(pool, { session_id: sessionId })).status).toBe(202);
  const late = await getSession(pool, sessionId);
  expect(early.body['turns']).toBe(1);
  expect(late.body['turns']).toBe(8);
  expect(Number(late.body['ttl_ms_remaining'])).toBeLessThan(Number(early.body['ttl_ms_remaining']));
  expect(Number(early.body['ttl_ms_remaining'])).toBeLessThanOrEqual(600_000);

  const ninth = await submit(pool, taskRequest(pool, { session_id: sessionId }));
  expect(ninth.status).toBe(400);
  expect(ninth.body).toEqual(expect.objectContaining({ code: 'INVALID_PARAMS', message: expect.stringMatching(/8 turns.*new session/) }));

  const tenantB = { authorization: `Bearer ${pool.apiKeys.tenantB}` };
  expect((await getSession(pool, sessionId, tenantB)).status).toBe(404);
  expect(await deleteSession(pool, sessionId, tenantB)).toBe(404);
  // Tenant B's session with the same id is its own, with its own turns.
  expect((await submit(pool, taskRequest(pool, { session_id: sessionId }), tenantB)).status).toBe(202);
  expect(await deleteSession(pool, sessionId)).toBe(204);
  expect((await getSession(pool, sessionId)).status).toBe(404);
  expect((await getSession(pool, sessionId, tenantB)).body['turns']).toBe(1);
}, 60_000);

test('ORCH-3021: a turn after the session TTL is refused with 400 and says to start a new session', async () => {
  const sessionId = randomUUID();
  expect((await turn(small, { session_id: sessionId })).status).toBe(202);
  await waitFor(async () => (await getSession(small, sessionId)).body['ttl_ms_remaining'] === 0, 10_000, 'the session TTL to run out');
  const late = await submit(small, taskRequest(small, { session_id: sessionId }));
  expect(late.status).toBe(400);
  expect(late.body).toEqual(expect.objectContaining({ code: 'INVALID_PARAMS', message: expect.stringMatching(/expired.*new session/) }));
}, 30_000);

test('ORCH-3022 ORCH-3028: more sessions than slots → LRU evictions counted, residency ≤ slots, KV pressure on /metrics', async () => {
  const reports: Record<string, unknown>[] = [];
  for (let index = 0; index < 4; index += 1) {
    const events = (await turn(small, { session_id: randomUUID(), determinism: 'best_effort' })).events;
    const kv = frame(events, 'kv');
    if (kv) reports.push(kv);
  }
  expect(reports).toHaveLength(4);
  expect(reports.every((report) => Number(report['kv_sessions_resident']) <= 2)).toBe(true);
  const evictions = reports.map((report) => Number(report['kv_evictions_total']));
  // Two slots: the third and fourth sessions each evict the least recently used one.
  expect(evictions[3]! - evictions[1]!).toBe(2);
  const response = await request(`${small.url}/metrics`, { headers: small.authHeaders });
  const { samples } = parsePrometheusText(await response.body.text());
  const replicaId = `${small.poolId}-r0`;
  const sample = (name: string) => samples.find((entry) => entry.name === name && entry.labels['replica_id'] === replicaId)?.value;
  expect(sample('kv_sessions_resident')).toBe(2);
  expect(sample('kv_evictions_total')).toBe(evictions[3]);
  expect(sample('kv_resident_bytes')).toBeGreaterThan(0);
}, 60_000);

test('ORCH-3009 ORCH-3023: the session\'s replica stopped → after the bounded wait the turn runs on the other, kv_warmth=false and kv_migrated=false', async () => {
  const sessionId = randomUUID();
  const first = await turn(pool, { session_id: sessionId, prompt: 'Failover', determinism: 'best_effort' });
  const home = String(frame(first.events, 'dispatched')?.['replica_id']);
  const index = home.endsWith('-r0') ? 0 : 1;
  await pool.poolWorkers[index]?.stop();
  // Submitted at once: the gateway may still see the replica Ready and place the turn on its (unpolled) lane.
  const second = await turn(pool, { session_id: sessionId, prompt: `Failover${tokensOf(first.events).text}`, determinism: 'best_effort' });
  const dispatched = frame(second.events, 'dispatched');
  expect(dispatched?.['replica_id']).not.toBe(home);
  expect(dispatched).toEqual(expect.objectContaining({ kv_warmth: false, kv_migrated: false }));
  expect(frame(second.events, 'kv')).toEqual(expect.objectContaining({ kv_warmth: false, kv_migrated: false }));
  expect((await getSession(pool, sessionId)).body).toEqual(expect.objectContaining({ turns: 2, kv_warmth: false, replica_id: dispatched?.['replica_id'] }));
}, 60_000);

test('ORCH-3009 ORCH-3023: the session\'s replica busy (its only slot taken) → the turn goes back to the pool at once (or after the bounded wait) and runs on the other replica, kv_warmth=false', async () => {
  const sessionId = randomUUID();
  const first = await turn(busy, { session_id: sessionId, prompt: 'Busy', determinism: 'best_effort' });
  const home = String(frame(first.events, 'dispatched')?.['replica_id']);
  // Occupy the home replica's only slot with a long task of another session (retry until it lands there).
  let occupier: { taskId: string; reading: ReturnType<typeof readStream> } | undefined;
  while (!occupier) {
    const body = taskRequest(busy, { max_tokens: 400 });
    expect((await submit(busy, body)).status).toBe(202);
    const reading = readStream(`${busy.url}/v1/tasks/${String(body['task_id'])}/stream`);
    await waitFor(() => reading.events.some((event) => event.data['phase'] === 'dispatched'), 20_000, 'the long task to start');
    const landed = reading.events.find((event) => event.data['phase'] === 'dispatched')?.data['replica_id'];
    if (landed === home) occupier = { taskId: String(body['task_id']), reading };
    else {
      const cancel = await request(`${busy.url}/v1/tasks/${String(body['task_id'])}/cancel`, { method: 'POST', headers: busy.authHeaders });
      await cancel.body.dump();
      await reading.finished;
    }
  }
  const second = await turn(busy, { session_id: sessionId, prompt: `Busy${tokensOf(first.events).text}`, determinism: 'best_effort' });
  const dispatched = frame(second.events, 'dispatched');
  expect(dispatched?.['replica_id']).not.toBe(home);
  expect(dispatched).toEqual(expect.objectContaining({ kv_warmth: false, kv_migrated: false }));
  expect(frame(second.events, 'kv')?.['kv_warmth']).toBe(false);
  // The long task was never disturbed.
  expect(occupier.reading.events.at(-1)?.event).not.toBe('error');
  const cancel = await request(`${busy.url}/v1/tasks/${occupier.taskId}/cancel`, { method: 'POST', headers: busy.authHeaders });
  await cancel.body.dump();
  await occupier.reading.finished;
}, 90_000);

test('ORCH-2004/2005 ORCH-3021: a gateway that never saw the session finds its turns and replica in Temporal, and its delete holds on every gateway that does not remember it', async () => {
  const [other, third] = [await pool.addGateway(), await pool.addGateway()];
  const at = async (url: string, method: 'GET' | 'DELETE', id: string): Promise<{ status: number; body: Record<string, unknown> }> => {
    const response = await request(`${url}/v1/sessions/${id}`, { method, headers: pool.authHeaders });
    const text = await response.body.text();
    return { status: response.statusCode, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
  };
  try {
    const sessionId = randomUUID();
    await turn(pool, { session_id: sessionId, prompt: 'Elsewhere', determinism: 'best_effort' });
    const second = await turn(pool, { session_id: sessionId, prompt: 'Elsewhere again', determinism: 'best_effort' });
    const replicaId = frame(second.events, 'kv')?.['replica_id'];
    // Visibility records the replica when the turn's workflow closes, just after its stream ends.
    await waitFor(async () => (await at(other.url, 'GET', sessionId)).body['replica_id'] === replicaId, 10_000, 'the session in visibility');
    const seen = await at(other.url, 'GET', sessionId);
    expect(seen.body).toEqual(expect.objectContaining({ turns: 2, kv_migrated: false, replica_id: replicaId }));
    expect(Number(seen.body['ttl_ms_remaining'])).toBeGreaterThan(0);
    // Another tenant asking another gateway learns nothing either.
    const foreign = await request(`${other.url}/v1/sessions/${sessionId}`, { headers: { authorization: `Bearer ${pool.apiKeys.tenantB}` } });
    await foreign.body.dump();
    expect(foreign.statusCode).toBe(404);

    expect((await at(other.url, 'DELETE', sessionId)).status).toBe(204);
    await waitFor(() => pool.logs.lines().some((line) => line['msg'] === 'session KV erased' && line['session_id'] === sessionId), 20_000, 'the eviction on the session\'s replica');
    await waitFor(async () => (await at(third.url, 'GET', sessionId)).status === 404, 10_000, 'the delete in visibility');
    expect((await at(other.url, 'GET', sessionId)).status).toBe(404);
    expect((await at(third.url, 'DELETE', randomUUID())).status).toBe(404);
  } finally {
    await Promise.all([other.close(), third.close()]);
  }
}, 60_000);
