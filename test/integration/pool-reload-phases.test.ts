import { ApplicationFailure } from '@temporalio/common';
import { NativeConnection, Worker } from '@temporalio/worker';
import { request } from 'undici';
import type { PoolOperationResult, ReplicaControlActivities, ReplicaControlResult } from '../../core/pool-state';
import { POOL_STATE_QUERY, poolStateWorkflowId } from '../../core/pool-state';
import type { PoolState } from '../../core/pool-state';
import { replicaControlTaskQueue } from '../../core/task-queues';
import { startTestStack, type TestStack } from '../support/stack';

/**
 * The reload workflow's phases against real Temporal with the replicas' control activities faked: a pool of
 * three configured replicas, no pool worker. The real-engine paths are in pool-reload-canary.test.ts.
 */
let stack: TestStack;

beforeAll(async () => {
  stack = await startTestStack({ replicas: 3, inProcessReplicas: 0 });
});
afterAll(async () => {
  await stack.stop();
});

const replicaId = (index: number): string => `${stack.poolId}-r${index}`;

type Failing = Partial<Record<'reload' | 'check', (replica: string, modelRef: string) => boolean>>;

/** Serves every replica's control queue with fakes that log each call as `replica kind model`. */
async function withFakeReplicas<T>(failing: Failing, run: (calls: string[]) => Promise<T>): Promise<T> {
  const calls: string[] = [];
  const connection = await NativeConnection.connect({ address: stack.temporalAddress });
  const workers = await Promise.all(
    [0, 1, 2].map((index) => {
      const replica = replicaId(index);
      let modelRef = stack.model;
      const result = (state: string): ReplicaControlResult => ({ replicaId: replica, state, modelRef });
      const activities: ReplicaControlActivities = {
        drainReplica: () => {
          calls.push(`${replica} drain`);
          return Promise.resolve(result('drained'));
        },
        resumeReplica: () => {
          calls.push(`${replica} resume`);
          return Promise.resolve(result('ready'));
        },
        reloadReplica: ({ modelRef: target }) => {
          calls.push(`${replica} reload ${target}`);
          if (failing.reload?.(replica, target) === true) throw ApplicationFailure.create({ type: 'UNTRUSTED_ARTIFACT', message: 'untrusted_artifact: digest mismatch', nonRetryable: true });
          modelRef = target;
          return Promise.resolve(result('drained'));
        },
        checkReplica: ({ modelRef: target }) => {
          calls.push(`${replica} check ${target}`);
          if (failing.check?.(replica, target) === true) throw ApplicationFailure.create({ type: 'WORKER_RESET', message: 'self_test_failed: no token decoded', nonRetryable: true });
          return Promise.resolve(result('drained'));
        },
      };
      return Worker.create({ connection, namespace: stack.config.temporal.namespace, taskQueue: replicaControlTaskQueue(replica), activities });
    }),
  );
  const running = workers.map((worker) => worker.run());
  try {
    return await run(calls);
  } finally {
    for (const worker of workers) worker.shutdown();
    await Promise.all(running);
    await connection.close();
  }
}

async function reload(body: Record<string, unknown>): Promise<{ result: PoolOperationResult; state: PoolState }> {
  const response = await request(`${stack.url}/v1/pools/${stack.poolId}/reload`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...stack.authHeaders },
    body: JSON.stringify(body),
  });
  const accepted = (await response.body.json()) as Record<string, unknown>;
  expect(response.statusCode).toBe(202);
  const result = (await stack.client.workflow.getHandle(String(accepted['operation_id'])).result()) as PoolOperationResult;
  const state = await stack.client.workflow.getHandle(poolStateWorkflowId(stack.poolId)).query<PoolState>(POOL_STATE_QUERY);
  return { result, state };
}

const stepsOf = (state: PoolState): [string, readonly string[], string][] =>
  (state.last_operation?.reload?.steps ?? []).map((step) => [step.phase, step.replica_ids, step.model_ref]);

test('ORCH-3033: a canary that fails its check under observation is the only replica rolled back; the others get no control call', async () => {
  const next = `${stack.model}-v2`;
  await withFakeReplicas({ check: () => true }, async (calls) => {
    const { result, state } = await reload({ new_model_ref: next, canary_observe_ms: 1 });
    expect(result).toEqual(expect.objectContaining({ outcome: 'rolled_back', cause: expect.stringMatching(new RegExp(`^canary ${replicaId(0)}: WORKER_RESET \\(self_test_failed`)) }));
    expect(calls).toEqual([`${replicaId(0)} drain`, `${replicaId(0)} reload ${next}`, `${replicaId(0)} check ${next}`, `${replicaId(0)} reload ${stack.model}`, `${replicaId(0)} resume`]);
    expect(stepsOf(state)).toEqual([
      ['canary', [replicaId(0)], next],
      ['canary_observing', [replicaId(0)], next],
      ['rolling_back', [replicaId(0)], stack.model],
    ]);
    expect(state).toEqual(expect.objectContaining({ mode: 'serving', model_ref: null }));
  });
});

test('ORCH-3033 ORCH-3031: a replica that fails after the canary passed rolls back every replica that switched, in one action', async () => {
  const next = `${stack.model}-v3`;
  await withFakeReplicas({ reload: (replica, target) => replica === replicaId(2) && target === next }, async (calls) => {
    const { result, state } = await reload({ new_model_ref: next });
    expect(result).toEqual(expect.objectContaining({ outcome: 'rolled_back', cause: expect.stringMatching(new RegExp(`^${replicaId(2)}: UNTRUSTED_ARTIFACT`)) }));
    // The canary alone first; the rest only after it loaded.
    expect(calls.slice(0, 2)).toEqual([`${replicaId(0)} drain`, `${replicaId(0)} reload ${next}`]);
    // r0 and r1 had switched: both go back; r2 went back by itself. Then every replica resumes.
    expect(calls.filter((call) => call.endsWith(` reload ${stack.model}`)).sort()).toEqual([`${replicaId(0)} reload ${stack.model}`, `${replicaId(1)} reload ${stack.model}`]);
    expect(calls.filter((call) => call.endsWith(' resume')).sort()).toEqual([0, 1, 2].map((index) => `${replicaId(index)} resume`));
    expect(stepsOf(state)).toEqual([
      ['canary', [replicaId(0)], next],
      ['rolling_out', [replicaId(1), replicaId(2)], next],
      ['rolling_back', [replicaId(0), replicaId(1), replicaId(2)], stack.model],
    ]);
    expect(state).toEqual(expect.objectContaining({ mode: 'serving', model_ref: null }));
  });
});

test('ORCH-3033: strategy all_at_once reloads every replica together; the switch names them all', async () => {
  const next = `${stack.model}-v4`;
  await withFakeReplicas({}, async (calls) => {
    const { result, state } = await reload({ new_model_ref: next, strategy: 'all_at_once' });
    expect(result.outcome).toBe('completed');
    expect(calls.filter((call) => call.includes(' check '))).toEqual([]);
    expect(stepsOf(state)).toEqual([
      ['rolling_out', [0, 1, 2].map(replicaId), next],
      ['switched', [0, 1, 2].map(replicaId), next],
    ]);
    expect(state).toEqual(expect.objectContaining({ mode: 'serving', model_ref: next, previous_model_ref: stack.model }));
    expect(state.last_operation?.reload?.strategy).toBe('all_at_once');
  });
});
