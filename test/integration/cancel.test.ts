import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { request } from 'undici';
import { taskWorkflowId } from '../../core/ids';
import type { TaskResult } from '../../core/task-workflow-contract';
import { readStream, tokensOf, waitFor } from '../support/sse-client';
import { startTestStack, taskRequest, type TestStack } from '../support/stack';

let stack: TestStack;

beforeAll(async () => {
  // One slot and a slow engine, so a second task waits in the queue and a stream lasts long enough to cancel.
  stack = await startTestStack({ slots: 1, ttftMs: 10, interTokenMs: 40 });
});
afterAll(async () => {
  await stack.stop();
});

async function submit(body: Record<string, unknown>): Promise<void> {
  const response = await request(`${stack.url}/v1/tasks`, { method: 'POST', headers: { 'content-type': 'application/json', ...stack.authHeaders }, body: JSON.stringify(body) });
  expect(response.statusCode).toBe(202);
  await response.body.dump();
}

async function cancel(taskId: string): Promise<number> {
  const response = await request(`${stack.url}/v1/tasks/${taskId}/cancel`, { method: 'POST', headers: stack.authHeaders });
  await response.body.dump();
  return response.statusCode;
}

function engineSlotsBusy(): Promise<boolean> {
  const engine = stack.poolWorkers[0]?.engine;
  if (!engine) throw new Error('no replica');
  if (!engine.slotControl) throw new Error('the engine has no slot introspection');
  return engine.slotControl.list().then((slots) => slots.some((slot) => slot.isProcessing));
}

test('ORCH-3026 OC-CTRL-2012 ORCH-3017: a cancel mid-stream is acknowledged, no token follows it, and the slot is freed', async () => {
  const body = taskRequest(stack, { max_tokens: 200 });
  const taskId = String(body['task_id']);
  await submit(body);
  const reading = readStream(`${stack.url}/v1/tasks/${taskId}/stream`);
  await waitFor(() => reading.events.filter((event) => event.event === 'token').length >= 3, 10_000, 'three tokens');

  expect(await cancel(taskId)).toBe(204);
  const tokensAtAck = reading.events.filter((event) => event.event === 'token').length;
  const events = await reading.finished;

  // The gateway closes the stream with end{canceled} at the moment it acknowledges the cancel; a token
  // emitted after that would follow the end frame.
  const end = events.at(-1);
  expect(end?.event).toBe('end');
  expect(end?.data['canceled']).toBe(true);
  const { indices } = tokensOf(events);
  expect(end?.data['tokens_out']).toBe(indices.length);
  expect(indices.length).toBeLessThan(200);
  expect(indices.length).toBeGreaterThanOrEqual(tokensAtAck);
  expect(events.slice(events.indexOf(end!) + 1)).toHaveLength(0);

  // The engine request is aborted at once (the worker's next chunk is answered "cancelled").
  await waitFor(async () => !(await engineSlotsBusy()), 3_000, 'the engine slot to be released');
  const result = (await stack.client.workflow.getHandle(taskWorkflowId(taskId)).result()) as TaskResult;
  expect(result.state).toBe('cancelled');
  expect(result.tokensOut).toBeLessThan(200);
});

test('OC-CORE-1005: a task cancelled while queued never dispatches', async () => {
  const running = taskRequest(stack, { max_tokens: 60 });
  const queued = taskRequest(stack, { max_tokens: 5 });
  await submit(running);
  const runningReading = readStream(`${stack.url}/v1/tasks/${String(running['task_id'])}/stream`);
  await waitFor(() => runningReading.events.some((event) => event.event === 'token'), 10_000, 'the first task to run');
  await submit(queued);
  const queuedId = String(queued['task_id']);

  expect(await cancel(queuedId)).toBe(204);
  const queuedEvents = await readStream(`${stack.url}/v1/tasks/${queuedId}/stream`).finished;
  expect(tokensOf(queuedEvents).indices).toHaveLength(0);
  expect(queuedEvents.at(-1)?.data).toEqual(expect.objectContaining({ canceled: true, tokens_out: 0 }));

  const handle = stack.client.workflow.getHandle(taskWorkflowId(queuedId));
  const result = (await handle.result()) as TaskResult;
  expect(result.state).toBe('cancelled');
  const history = await handle.fetchHistory();
  expect((history.events ?? []).some((event) => event.activityTaskStartedEventAttributes)).toBe(false);

  // The running task is unaffected and completes.
  const runningEvents = await runningReading.finished;
  expect(runningEvents.at(-1)?.data).toEqual({ tokens_out: 60, decode_ms: expect.any(Number) });
});

test('cancelling a finished task is a no-op 204', async () => {
  const body = taskRequest(stack, { max_tokens: 2 });
  await submit(body);
  await readStream(`${stack.url}/v1/tasks/${String(body['task_id'])}/stream`).finished;
  expect(await cancel(String(body['task_id']))).toBe(204);
  const result = (await stack.client.workflow.getHandle(taskWorkflowId(String(body['task_id']))).result()) as TaskResult;
  expect(result.state).toBe('completed');
});

/** Runs a command line (curl, Python's http.client) as a user's client would, and returns its stdout. */
function run(command: string, args: readonly string[]): Promise<string> {
  return new Promise((resolveRun, reject) => {
    execFile(command, args, { timeout: 20_000 }, (error, stdout) => (error ? reject(new Error(error.message)) : resolveRun(stdout)));
  });
}

test('ORCH-3026 (issue 13): a cancel from any client — JSON content type with no body (curl, Python), no content type, {} or a reason — answers 204 and stops the stream; unknown ids 404; a second cancel 204', async () => {
  const authorization = stack.authHeaders['authorization'] ?? '';
  const clients: ((taskId: string) => Promise<number>)[] = [
    // curl's defaults with a JSON header and nothing to send: the request that used to get 400.
    async (taskId) => Number(await run('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '-X', 'POST', '-H', 'content-type: application/json', '-H', `authorization: ${authorization}`, `${stack.url}/v1/tasks/${taskId}/cancel`])),
    // Python's standard library client, the same way.
    async (taskId) =>
      Number(
        await run('python3', [
          '-c',
          'import sys, urllib.request as u; r = u.Request(sys.argv[1], method="POST", headers={"Content-Type": "application/json", "Authorization": sys.argv[2]}); print(u.urlopen(r).status)',
          `${stack.url}/v1/tasks/${taskId}/cancel`,
          authorization,
        ]),
      ),
    async (taskId) => (await request(`${stack.url}/v1/tasks/${taskId}/cancel`, { method: 'POST', headers: { ...stack.authHeaders, 'content-type': 'application/json' }, body: '{}' })).statusCode,
    async (taskId) => (await request(`${stack.url}/v1/tasks/${taskId}/cancel`, { method: 'POST', headers: { ...stack.authHeaders, 'content-type': 'application/json' }, body: JSON.stringify({ reason: 'user pressed stop' }) })).statusCode,
  ];
  for (const cancelWith of clients) {
    const body = taskRequest(stack, { max_tokens: 300 });
    const taskId = String(body['task_id']);
    await submit(body);
    const reading = readStream(`${stack.url}/v1/tasks/${taskId}/stream`);
    await waitFor(() => tokensOf(reading.events).indices.length >= 2, 10_000, 'two tokens');
    expect(await cancelWith(taskId)).toBe(204);
    const events = await reading.finished;
    expect(events.at(-1)).toEqual(expect.objectContaining({ event: 'end', data: expect.objectContaining({ canceled: true }) }));
    expect(tokensOf(events).indices.length).toBeLessThan(300);
    expect(await cancel(taskId)).toBe(204);
    const result = (await stack.client.workflow.getHandle(taskWorkflowId(taskId)).result()) as TaskResult;
    expect(result.state).toBe('cancelled');
  }
  expect(await cancel(randomUUID())).toBe(404);
  expect(await cancel('not-a-task-id')).toBe(404);
  const badReason = await request(`${stack.url}/v1/tasks/${randomUUID()}/cancel`, { method: 'POST', headers: { ...stack.authHeaders, 'content-type': 'application/json' }, body: JSON.stringify({ reason: 42 }) });
  expect(badReason.statusCode).toBe(400);
  await badReason.body.dump();
}, 120_000);

test('issue 13: a cancel requested through Temporal (the Web UI\'s Cancel button, `temporal workflow cancel`) ends the task cancelled — the stream closes with end{canceled}, the engine stops, TaskState is cancelled', async () => {
  const body = taskRequest(stack, { max_tokens: 400 });
  const taskId = String(body['task_id']);
  await submit(body);
  const reading = readStream(`${stack.url}/v1/tasks/${taskId}/stream`);
  await waitFor(() => reading.events.filter((event) => event.event === 'token').length >= 3, 10_000, 'three tokens');
  // What the Web UI's button sends: RequestCancelWorkflowExecution.
  await stack.client.workflow.getHandle(taskWorkflowId(taskId)).cancel();
  const events = await reading.finished;
  expect(events.at(-1)).toMatchObject({ event: 'end', data: { canceled: true } });
  expect(tokensOf(events).indices.length).toBeLessThan(400);
  const result = (await stack.client.workflow.getHandle(taskWorkflowId(taskId)).result()) as TaskResult;
  expect(result.state).toBe('cancelled');
  await waitFor(async () => !(await engineSlotsBusy()), 5_000, 'the engine slot to be released');
  const description = await stack.client.workflow.getHandle(taskWorkflowId(taskId)).describe();
  expect(description.searchAttributes['TaskState']).toEqual(['cancelled']);
}, 40_000);
