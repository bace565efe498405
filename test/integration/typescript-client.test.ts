import { randomUUID } from 'node:crypto';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { OrchApiError, OrchClient, type StreamEvent, type TaskRequest } from '../../clients/typescript/src';
import { startTestStack, type TestStack } from '../support/stack';

/**
 * Issue 11 item 3: the typed client against a real gateway and Temporal — submit, stream as an async
 * iterator (resumed with Last-Event-ID across a dropped connection), cancel, sessions, pool health and
 * control, typed errors.
 */
let stack: TestStack;
let client: OrchClient;

beforeAll(async () => {
  stack = await startTestStack({ slots: 2, interTokenMs: 15, priorities: [{ name: 'batch', queue_capacity: 0 }] });
  client = new OrchClient({ baseUrl: stack.url, apiKey: stack.apiKeys.tenantA });
});
afterAll(async () => {
  await stack.stop();
});

function task(overrides: Partial<TaskRequest> = {}): TaskRequest {
  return { task_id: randomUUID(), session_id: randomUUID(), workload: 'completion', model_ref: stack.model, engine: 'llamacpp', ctx: 1024, priority: 'interactive', seed: 9, prompt: 'Write a haiku about queues.', max_tokens: 12, deadline_ms: 30_000, ...overrides };
}

async function collect(events: AsyncIterable<StreamEvent>): Promise<StreamEvent[]> {
  const all: StreamEvent[] = [];
  for await (const event of events) all.push(event);
  return all;
}

const tokenIndices = (events: readonly StreamEvent[]): number[] => events.flatMap((event) => (event.event === 'token' ? [event.data.i] : []));

/** A TCP proxy to the gateway whose first connection is cut after `cutAfterBytes` bytes from the gateway. */
async function cuttingProxy(target: URL, cutAfterBytes: number): Promise<{ url: string; connections: () => number; close: () => Promise<void> }> {
  let connections = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((incoming) => {
    connections += 1;
    const cut = connections === 1;
    const outgoing = connect(Number(target.port), target.hostname);
    sockets.add(incoming).add(outgoing);
    let forwarded = 0;
    incoming.pipe(outgoing);
    outgoing.on('data', (chunk: Buffer) => {
      forwarded += chunk.length;
      incoming.write(chunk);
      if (cut && forwarded >= cutAfterBytes) {
        incoming.destroy();
        outgoing.destroy();
      }
    });
    const end = (): void => {
      incoming.destroy();
      outgoing.destroy();
    };
    incoming.on('error', end).on('close', end);
    outgoing.on('error', end).on('close', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    connections: () => connections,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

test('issue 11: submit and stream with the typed client — started, every token once in order, end', async () => {
  const submitted = task();
  const admission = await client.submit(submitted);
  expect(admission.task_id).toBe(submitted.task_id);
  const events = await collect(client.stream(submitted.task_id));
  expect(events[0]?.event).toBe('started');
  expect(tokenIndices(events)).toEqual([...Array(12).keys()]);
  expect(events.at(-1)).toMatchObject({ event: 'end', data: { tokens_out: 12 } });
});

test('issue 11: a stream whose connection drops mid-way is resumed by the client with Last-Event-ID — no token lost or repeated', async () => {
  const submitted = task({ max_tokens: 40 });
  await client.submit(submitted);
  const proxy = await cuttingProxy(new URL(stack.url), 1_200);
  try {
    const viaProxy = new OrchClient({ baseUrl: proxy.url, apiKey: stack.apiKeys.tenantA, reconnectDelayMs: 50 });
    const events = await collect(viaProxy.stream(submitted.task_id));
    expect(proxy.connections()).toBeGreaterThanOrEqual(2);
    expect(tokenIndices(events)).toEqual([...Array(40).keys()]);
    expect(events.at(-1)?.event).toBe('end');
  } finally {
    await proxy.close();
  }
});

test('issue 11: cancel, sessions, pool health, drain and resume, replica sets through the typed client', async () => {
  const long = task({ max_tokens: 400 });
  await client.submit(long);
  const stream = client.stream(long.task_id);
  for await (const event of stream) {
    if (event.event === 'token' && event.data.i === 2) {
      await client.cancel(long.task_id, 'test');
    }
    if (event.event === 'end') expect(event.data.canceled).toBe(true);
  }
  const session = await client.session(long.session_id);
  expect(session.turns).toBe(1);
  await client.deleteSession(long.session_id);
  const health = await client.poolHealth(stack.poolId);
  expect(health).toMatchObject({ live: true, ready: true, draining: false });
  const drained = await client.drain(stack.poolId, 5_000);
  expect(drained).toMatchObject({ pool_id: stack.poolId, kind: 'drain' });
  await expect(client.submit(task())).rejects.toMatchObject({ status: 503, code: 'POOL_UNAVAILABLE', retriable: true });
  const progress: boolean[] = [];
  expect(await client.waitForOperation(drained, { onProgress: (health) => progress.push(health.draining) })).toMatchObject({ id: drained.operation_id, kind: 'drain', outcome: 'completed' });
  expect(progress.at(-1)).toBe(true);
  const resumed = await client.resume(stack.poolId);
  expect(await client.waitForOperation(resumed)).toMatchObject({ kind: 'resume', outcome: 'completed' });
  expect((await client.poolHealth(stack.poolId)).draining).toBe(false);
  const sets = await client.replicaSets();
  expect(sets.some((set) => set.pool_id === stack.poolId)).toBe(true);
});

test('issue 11: errors are OrchApiError with the envelope — code, retriable, Retry-After as retryAfterMs', async () => {
  await expect(client.submit(task({ ctx: 0 }))).rejects.toBeInstanceOf(OrchApiError);
  await expect(client.submit(task({ priority: 'batch' }))).rejects.toMatchObject({ status: 429, code: 'ADMISSION_REJECT', retriable: true, retryAfterMs: expect.any(Number) });
  await expect(new OrchClient({ baseUrl: stack.url }).poolHealth(stack.poolId)).rejects.toMatchObject({ status: 401, code: 'UNAUTHENTICATED' });
  await expect(collect(client.stream(randomUUID()))).rejects.toMatchObject({ status: 404 });
});
