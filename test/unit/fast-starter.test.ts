import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { FastStarter } from '../../api/fast-start/fast-starter';
import type { Priority } from '../../core/engines';
import type { ReplicaStatus } from '../../core/replica-status';
import type { TaskWorkflowInput } from '../../core/task-workflow-contract';
import { replicaStatusFixture } from '../support/replica-status-fixture';

/**
 * The gateway's half of fast start (ADR 2026-12-06): which tasks it tries, on which replica, and what a
 * refusal does. A real HTTP listener stands in for the replicas' fast-start endpoints.
 */
const TOKEN = 'internal-token-for-unit-tests';
let server: Server;
let url: string;
/** Replica id → the status each of its POSTs gets; the bodies they received. */
const answers = new Map<string, number>();
const received: { replicaId: string; body: TaskWorkflowInput; authorization: string | undefined }[] = [];

beforeAll(async () => {
  server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const replicaId = (request.url ?? '').split('/')[1] ?? '';
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as TaskWorkflowInput;
      received.push({ replicaId, body, authorization: request.headers.authorization });
      response.writeHead(answers.get(replicaId) ?? 202).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
});
const created: FastStarter[] = [];
beforeEach(() => {
  answers.clear();
  received.length = 0;
});
afterEach(async () => {
  await Promise.all(created.splice(0).map((fast) => fast.close()));
});

function replica(replicaId: string, overrides: Partial<ReplicaStatus> = {}): ReplicaStatus {
  // Each replica's endpoint is a path on the one test listener: `${url}/${replicaId}/internal/v1/fast-starts`.
  return replicaStatusFixture(replicaId, { fast_start_url: `${url}/${replicaId}`, ...overrides });
}

function starter(replicas: ReplicaStatus[], depth: Record<Priority, number>, enabled = true): FastStarter {
  const fast = new FastStarter({
    replicas: { replicas: () => replicas },
    internalToken: TOKEN,
    enabled,
    waitMs: 3_000,
    depth: () => depth,
    logger: pino({ level: 'silent' }),
  });
  created.push(fast);
  return fast;
}

function input(priority: Priority, placement?: TaskWorkflowInput['placement']): TaskWorkflowInput {
  return {
    version: 1,
    request: {
      task_id: randomUUID(),
      session_id: randomUUID(),
      workload: 'completion',
      model_ref: 'm',
      engine: 'llamacpp',
      ctx: 1024,
      priority,
      seed: 1,
      sampler_profile_version: 'v1',
      prompt: 'p',
      max_tokens: 4,
      deadline_ms: 10_000,
    },
    poolId: 'p',
    clientId: 'tenant',
    admittedAtMs: Date.now(),
    timeouts: { wallMs: 10_000, idleMs: 5_000, heartbeatMs: 1_000, maxAttempts: 3 },
    ...(placement ? { placement } : {}),
  };
}

describe('fast start, the gateway side (ADR 2026-12-06)', () => {
  it('an idle pool: the least-loaded Ready replica with a free slot starts the task, asked with the internal token', async () => {
    const fast = starter([replica('p-r0', { slots_busy: 1 }), replica('p-r1', { slots_busy: 0 })], { interactive: 1, batch: 0 });
    const placed = await fast.start(input('interactive'));
    expect(placed?.placement).toEqual({ replicaId: 'p-r1', waitMs: 3_000, reason: 'fast-start', fastStartUrl: `${url}/p-r1` });
    expect(received.map((entry) => [entry.replicaId, entry.authorization])).toEqual([['p-r1', `Bearer ${TOKEN}`]]);
    expect(received[0]?.body.placement?.replicaId).toBe('p-r1');
  });

  it('something of equal or higher priority waits: no replica is asked, the task takes the queue', async () => {
    const replicas = [replica('p-r0')];
    // Depth counts the task itself (it entered the ledger at admission): one more means one waits.
    expect(await starter(replicas, { interactive: 2, batch: 0 }).start(input('interactive'))).toBeUndefined();
    expect(await starter(replicas, { interactive: 1, batch: 1 }).start(input('batch'))).toBeUndefined();
    expect(received).toEqual([]);
    // Waiting batch work does not hold back an interactive task.
    expect(await starter(replicas, { interactive: 1, batch: 5 }).start(input('interactive'))).toBeDefined();
  });

  it('a refusal (replica full) tries the next replica, then gives up; replicas not Ready, full, of another model or without a listener are never asked', async () => {
    answers.set('p-r0', 409);
    answers.set('p-r1', 409);
    const replicas = [
      replica('p-r0'),
      replica('p-r1'),
      replica('p-r2'),
      replica('p-r3', { ready: false, state: 'draining' }),
      replica('p-r4', { slots_busy: 2 }),
      replica('p-r5', { model_ref: 'other' }),
      replica('p-r6', { fast_start_url: null }),
    ];
    expect(await starter(replicas, { interactive: 1, batch: 0 }).start(input('interactive'))).toBeUndefined();
    // At most two asked per task: past two refusals the queue is the right place.
    expect(received.map((entry) => entry.replicaId)).toEqual(['p-r0', 'p-r1']);
  });

  it('a planned placement (session affinity) asks only that replica and keeps its reason', async () => {
    const fast = starter([replica('p-r0'), replica('p-r1')], { interactive: 1, batch: 0 });
    const placed = await fast.start(input('interactive', { replicaId: 'p-r1', waitMs: 250, reason: 'session-affinity' }));
    expect(placed?.placement).toEqual({ replicaId: 'p-r1', waitMs: 3_000, reason: 'session-affinity', fastStartUrl: `${url}/p-r1` });
    expect(received.map((entry) => entry.replicaId)).toEqual(['p-r1']);
  });

  it('turned off by config: never asks', async () => {
    expect(await starter([replica('p-r0')], { interactive: 1, batch: 0 }, false).start(input('interactive'))).toBeUndefined();
    expect(received).toEqual([]);
  });
});
