import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { temporal } from '@temporalio/proto';
import { request } from 'undici';
import { ReplicaSetSchema } from '../../api/openapi/api-schemas';
import type { ReplicaSetView } from '../../api/replica-sets';
import type { NativeConnection } from '@temporalio/worker';
import type { PoolConfig } from '../../core/config';
import { parseReplicaIdentity } from '../../core/ids';
import { poolTaskQueue } from '../../core/task-queues';
import { MOCK_BUILD_INFO, startMockEngine, type MockEngine } from '../../gpu-workers/engines/mock-llamacpp/mock-engine';
import { startPoolManager, startPoolWorker, type RunningPoolWorker } from '../../gpu-workers/pool-worker';
import { createLogger } from '../../platform/logger';
import { connectWorker } from '../../platform/temporal-connections';
import { poolHealth, postTask } from '../support/llama-server-pool';
import { readStream, waitFor } from '../support/sse-client';
import { startTestStack, taskRequest, type TestStack } from '../support/stack';

let stack: TestStack;
const extra: { replica: RunningPoolWorker; connection: NativeConnection }[] = [];
const cleanups: (() => Promise<void>)[] = [];

beforeAll(async () => {
  // Four configured replicas: r0 in process, r1 beside it (same key), r2 on another ctx, r3 on another engine build.
  stack = await startTestStack({ replicas: 4 });
  // One pool queue Worker per connection (the SDK refuses two): a second replica gets its own, as on another host.
  await startReplica(1, { ctx: 2048 });
});
afterAll(async () => {
  for (const { replica, connection } of extra) {
    await replica.stop();
    await connection.close();
  }
  for (const cleanup of cleanups) await cleanup();
  await stack.stop();
});

async function startReplica(replicaIndex: number, overrides: Partial<PoolConfig>, waitReady = true): Promise<RunningPoolWorker> {
  const pool = stack.config.pools[0];
  if (!pool) throw new Error('no pool');
  const logger = createLogger('test-extra-replica', stack.logs.stream);
  const connection = await connectWorker(stack.temporalAddress, logger);
  const options = { pool: { ...pool, ...overrides }, replicaIndex, namespace: 'default', connection, internalToken: stack.internalToken, logger };
  const replica = waitReady ? await startPoolWorker(options) : startPoolManager(options);
  extra.push({ replica, connection });
  return replica;
}

async function replicaSets(headers: Record<string, string> = stack.authHeaders): Promise<{ status: number; body: unknown }> {
  const response = await request(`${stack.url}/v1/replicasets`, { headers });
  return { status: response.statusCode, body: await response.body.json() };
}

function ours(body: unknown): ReplicaSetView[] {
  return (body as ReplicaSetView[]).filter((set) => set.pool_id === stack.poolId);
}

/** The replicas Temporal lists as pollers of the pool's shared queue (lanes are other queues). */
async function poolQueuePollers(): Promise<string[]> {
  const description = await stack.client.workflowService.describeTaskQueue({
    namespace: 'default',
    taskQueue: { name: poolTaskQueue(stack.poolId), kind: temporal.api.enums.v1.TaskQueueKind.TASK_QUEUE_KIND_NORMAL },
    taskQueueType: temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
  });
  return [...new Set((description.pollers ?? []).flatMap((poller) => parseReplicaIdentity(poller.identity ?? '')?.replicaId ?? []))].sort();
}

/** A mock engine behind a proxy that reports another build: an engine_version the pool's other replicas do not run. */
async function engineOfAnotherBuild(): Promise<string> {
  const engine: MockEngine = await startMockEngine({ slots: 4, contextSize: 2048 });
  const target = new URL(engine.url);
  const proxy: Server = createServer((incoming, outgoing) => {
    const upstream = httpRequest({ host: target.hostname, port: target.port, path: incoming.url, method: incoming.method, headers: incoming.headers }, (answer) => {
      if (incoming.url !== '/props') {
        outgoing.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(outgoing);
        return;
      }
      const chunks: Buffer[] = [];
      answer.on('data', (chunk: Buffer) => chunks.push(chunk));
      answer.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8').replaceAll(MOCK_BUILD_INFO, 'mock-0.2.0-other-build');
        outgoing.writeHead(answer.statusCode ?? 502, { 'content-type': 'application/json' });
        outgoing.end(body);
      });
    });
    incoming.pipe(upstream);
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  cleanups.push(async () => {
    await new Promise((resolve) => proxy.close(resolve));
    await engine.close();
  });
  return `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
}

test('ORCH-2104 OC-CTRL-2004 ORCH-3007 ORCH-3046 OC-CORE-1031: a replica with another ctx forms another set and never polls the pool queue the first set serves', async () => {
  await waitFor(async () => ours((await replicaSets()).body).some((set) => set.replicas.length === 2), 10_000, 'both replicas in one set');
  const { status, body } = await replicaSets();
  expect(status).toBe(200);
  for (const set of body as unknown[]) expect(ReplicaSetSchema.safeParse(set).error?.issues ?? []).toEqual([]);
  const [set] = ours(body);
  expect(set).toEqual(expect.objectContaining({ engine: 'llamacpp', model_ref: stack.model, ctx: 2048, slots_total: 8, slots_free: 8, load: 0 }));
  expect(set?.replicas.map((member) => member.replica_id)).toEqual([`${stack.poolId}-r0`, `${stack.poolId}-r1`]);

  // The same pool, but an engine started with a smaller context: another replica set, Ready on its own lane only.
  const other = await startReplica(2, { ctx: 1024 });
  expect(other.status()).toEqual(expect.objectContaining({ state: 'ready', ctx: 1024, pool_queue_standby: true }));
  await waitFor(async () => ours((await replicaSets()).body).length === 2, 15_000, 'a second replica set');
  const sets = ours((await replicaSets()).body);
  const second = sets.find((candidate) => candidate.ctx === 1024);
  expect(second?.replicas.map((member) => member.replica_id)).toEqual([`${stack.poolId}-r2`]);
  expect(second?.id).not.toBe(set?.id);
  expect(await poolQueuePollers()).toEqual([`${stack.poolId}-r0`, `${stack.poolId}-r1`]);
  expect(stack.logs.text()).toContain('standby: another replica set serves the pool queue');
  await waitFor(async () => {
    const health = await poolHealth(stack.url, stack.poolId);
    const entry = health.metrics.replicas.find((replica) => replica['replica_id'] === `${stack.poolId}-r2`);
    return entry?.['state'] === 'ready' && entry['polling'] === false && entry['pool_queue_standby'] === true;
  }, 10_000, 'health to show r2 as a standby');

  // Tasks sent to the pool queue run only on the set that serves it.
  const ran = new Set<unknown>();
  for (let index = 0; index < 6; index += 1) {
    const body = taskRequest(stack, { max_tokens: 2 });
    expect((await postTask(stack.url, body)).statusCode).toBe(202);
    const events = await readStream(`${stack.url}/v1/tasks/${String(body['task_id'])}/stream`).finished;
    ran.add(events.find((event) => event.event === 'metrics' && event.data['replica_id'] !== undefined)?.data['replica_id']);
  }
  expect([...ran].every((replica) => replica === `${stack.poolId}-r0` || replica === `${stack.poolId}-r1`)).toBe(true);
});

test('ORCH-3046 OC-CORE-1031: with require_same_engine_version, a replica of another engine build never becomes Ready for the pool; health says why', async () => {
  const url = await engineOfAnotherBuild();
  const replica = await startReplica(3, { require_same_engine_version: true, engine_runtime: { kind: 'external', url } }, false);
  const status = await replica.waitForStatus((candidate) => candidate.last_error?.kind === 'replica_set_mismatch', 20_000);
  expect(status.ready).toBe(false);
  expect(status.last_error).toEqual(expect.objectContaining({ code: 'POOL_UNAVAILABLE' }));
  expect(status.last_error?.message).toMatch(/require_same_engine_version: the pool's queue is served by .*engine_version mock-0\.1\.0.*this replica runs engine_version mock-0\.2\.0-other-build/);
  await waitFor(async () => {
    const health = await poolHealth(stack.url, stack.poolId);
    return health.metrics.replicas.some((entry) => entry['replica_id'] === `${stack.poolId}-r3` && (entry['last_error'] as { kind?: string } | null)?.kind === 'replica_set_mismatch');
  }, 10_000, 'health to name the mismatch');
  expect(await poolQueuePollers()).not.toContain(`${stack.poolId}-r3`);
  await replica.stop();
});

test('ORCH-3046: once the set serving the pool queue is gone, the standby set takes the queue over', async () => {
  const first = stack.poolWorkers[0];
  const second = extra[0]?.replica;
  if (!first || !second) throw new Error('replicas missing');
  await Promise.all([first.stop(), second.stop()]);
  await waitFor(async () => (await poolQueuePollers()).includes(`${stack.poolId}-r2`), 20_000, 'the standby to poll the pool queue');
  const standby = extra.find(({ replica }) => replica.replicaId === `${stack.poolId}-r2`)?.replica;
  expect(standby?.status()).toEqual(expect.objectContaining({ state: 'ready' }));
  expect(standby?.status().pool_queue_standby).toBeUndefined();
});

test('OC-CTRL-2040: replica sets need the control scope', async () => {
  expect((await replicaSets({ authorization: `Bearer ${stack.apiKeys.tenantAData}` })).status).toBe(403);
});
