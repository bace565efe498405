import { request } from 'undici';
import { ReplicaSetSchema } from '../../api/openapi/api-schemas';
import type { ReplicaSetView } from '../../api/replica-sets';
import type { NativeConnection } from '@temporalio/worker';
import { startPoolWorker, type RunningPoolWorker } from '../../gpu-workers/pool-worker';
import { createLogger } from '../../platform/logger';
import { connectWorker } from '../../platform/temporal-connections';
import { waitFor } from '../support/sse-client';
import { startTestStack, type TestStack } from '../support/stack';

let stack: TestStack;
const extra: { replica: RunningPoolWorker; connection: NativeConnection }[] = [];

beforeAll(async () => {
  // Two configured replicas; the third is found as a poller of the pool queue (another host, not in the config).
  stack = await startTestStack({ replicas: 2 });
  // One pool queue Worker per connection (the SDK refuses two): a second replica gets its own, as on another host.
  await startReplica(1, 2048);
});
afterAll(async () => {
  for (const { replica, connection } of extra) {
    await replica.stop();
    await connection.close();
  }
  await stack.stop();
});

async function startReplica(replicaIndex: number, ctx: number): Promise<void> {
  const pool = stack.config.pools[0];
  if (!pool) throw new Error('no pool');
  const logger = createLogger('test-extra-replica', stack.logs.stream);
  const connection = await connectWorker(stack.temporalAddress, logger);
  const replica = await startPoolWorker({ pool: { ...pool, ctx }, replicaIndex, namespace: 'default', connection, internalToken: stack.internalToken, logger });
  extra.push({ replica, connection });
}

async function replicaSets(headers: Record<string, string> = stack.authHeaders): Promise<{ status: number; body: unknown }> {
  const response = await request(`${stack.url}/v1/replicasets`, { headers });
  return { status: response.statusCode, body: await response.body.json() };
}

function ours(body: unknown): ReplicaSetView[] {
  return (body as ReplicaSetView[]).filter((set) => set.pool_id === stack.poolId);
}

test('ORCH-2104 OC-CTRL-2004 ORCH-3007: two replicas with one key form one set; a replica with another ctx forms another', async () => {
  await waitFor(async () => ours((await replicaSets()).body).some((set) => set.replicas.length === 2), 10_000, 'both replicas in one set');
  const { status, body } = await replicaSets();
  expect(status).toBe(200);
  for (const set of body as unknown[]) expect(ReplicaSetSchema.safeParse(set).error?.issues ?? []).toEqual([]);
  const [set] = ours(body);
  expect(set).toEqual(expect.objectContaining({ engine: 'llamacpp', model_ref: stack.model, ctx: 2048, slots_total: 8, slots_free: 8, load: 0 }));
  expect(set?.replicas.map((member) => member.replica_id)).toEqual([`${stack.poolId}-r0`, `${stack.poolId}-r1`]);

  // The same pool's queue, but an engine started with a smaller context: never the same replica set.
  await startReplica(2, 1024);
  await waitFor(async () => ours((await replicaSets()).body).length === 2, 15_000, 'a second replica set');
  const sets = ours((await replicaSets()).body);
  const other = sets.find((candidate) => candidate.ctx === 1024);
  expect(other?.replicas.map((member) => member.replica_id)).toEqual([`${stack.poolId}-r2`]);
  expect(other?.id).not.toBe(set?.id);
});

test('OC-CTRL-2040: replica sets need the control scope', async () => {
  expect((await replicaSets({ authorization: `Bearer ${stack.apiKeys.tenantAData}` })).status).toBe(403);
});
