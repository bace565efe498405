import pino from 'pino';
import { WorkflowUpdateRPCTimeoutOrCancelledError } from '@temporalio/client';
import type { FastifyBaseLogger } from 'fastify';
import { cancelTask } from '../../api/task-lifecycle';
import type { GatewayContext } from '../../api/gateway-context';

/**
 * ORCH-3026 OC-CTRL-2012 under load: when no workflow worker takes the cancel update within the RPC's deadline
 * (a host whose engine starves the stack of CPU: seen with vLLM on 2 cores), the cancel is still recorded
 * durably, as a workflow cancellation request, and acknowledged; only a request the server refuses is a 500.
 */
function contextWith(handle: { executeUpdate(): Promise<unknown>; cancel(): Promise<unknown>; describe(): Promise<unknown> }): GatewayContext {
  const cancelled: string[] = [];
  const context = {
    hub: { get: () => ({ cancel: () => cancelled.push('local'), poolId: 'p' }) },
    fastStarter: { withdraw: () => Promise.resolve() },
    client: { workflow: { getHandle: () => handle } },
    ledger: { withdrawn: () => undefined },
    sessions: { taskEnded: () => undefined },
    telemetry: { cancelled: () => undefined },
  };
  return context as unknown as GatewayContext;
}

const log = pino({ level: 'silent' }) as unknown as FastifyBaseLogger;

test('ORCH-3026 OC-CTRL-2012: a cancel update no worker took in time is recorded as a workflow cancellation request and acknowledged', async () => {
  const calls: string[] = [];
  const handle = {
    executeUpdate: () => Promise.reject(new WorkflowUpdateRPCTimeoutOrCancelledError('Timed out waiting for update response')),
    cancel: () => {
      calls.push('cancel');
      return Promise.resolve();
    },
    describe: () => Promise.resolve({}),
  };
  await expect(cancelTask(contextWith(handle), 'task-1', log)).resolves.toBeUndefined();
  expect(calls).toEqual(['cancel']);
});

test('ORCH-3026: if the server refuses the cancellation request too, the client is told to retry (INTERNAL), not told it worked', async () => {
  const handle = {
    executeUpdate: () => Promise.reject(new WorkflowUpdateRPCTimeoutOrCancelledError('Timed out waiting for update response')),
    cancel: () => Promise.reject(new Error('connection refused')),
    describe: () => Promise.resolve({}),
  };
  await expect(cancelTask(contextWith(handle), 'task-2', log)).rejects.toMatchObject({ code: 'INTERNAL' });
});
