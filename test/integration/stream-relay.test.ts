import { request } from 'undici';
import { taskWorkflowId } from '../../core/ids';
import type { RunningGateway } from '../../api/gateway';
import { readStream, tokensOf, waitFor } from '../support/sse-client';
import { startTestStack, taskRequest, type TestStack } from '../support/stack';

/**
 * A live stream is held by the gateway that admitted the task (design §2). Any other gateway — behind
 * the same load balancer, or another gateway process of `npm start` — relays it live from that holder
 * (api/stream-relay.ts), resumes it with Last-Event-ID, and forwards a cancel so nothing follows the ack.
 */
let stack: TestStack;
let other: RunningGateway;

beforeAll(async () => {
  stack = await startTestStack({ slots: 2, ttftMs: 10, interTokenMs: 30 });
  other = await stack.addGateway();
});
afterAll(async () => {
  await stack.stop();
});

async function submitToFirstGateway(overrides: Record<string, unknown>): Promise<string> {
  const body = taskRequest(stack, overrides);
  const response = await request(`${stack.url}/v1/tasks`, { method: 'POST', headers: { 'content-type': 'application/json', ...stack.authHeaders }, body: JSON.stringify(body) });
  expect(response.statusCode).toBe(202);
  await response.body.dump();
  return String(body['task_id']);
}

test('ORCH-2002 design §2: a stream read through another gateway is relayed live from the admitting one — tokens arrive while the task runs, ids intact', async () => {
  const taskId = await submitToFirstGateway({ max_tokens: 40 });
  const elsewhere = readStream(`${other.url}/v1/tasks/${taskId}/stream`);
  await waitFor(() => tokensOf(elsewhere.events).indices.length >= 3, 10_000, 'live tokens through the other gateway');
  // Live, not rebuilt from the result: the task is still running when they arrive.
  const description = await stack.client.workflow.getHandle(taskWorkflowId(taskId)).describe();
  expect(description.status.name).toBe('RUNNING');
  const relayed = await elsewhere.finished;
  const direct = await readStream(`${stack.url}/v1/tasks/${taskId}/stream`).finished;
  expect(relayed.map((event) => [event.id, event.event, event.data])).toEqual(direct.map((event) => [event.id, event.event, event.data]));
  expect(tokensOf(relayed).indices).toEqual([...Array(40).keys()]);
});

test('ORCH-2002: Last-Event-ID resumes a relayed stream after the frame the client already has', async () => {
  const taskId = await submitToFirstGateway({ max_tokens: 30 });
  const first = readStream(`${stack.url}/v1/tasks/${taskId}/stream`);
  await waitFor(() => tokensOf(first.events).indices.length >= 5, 10_000, 'five tokens');
  first.close();
  const lastId = first.events.at(-1)?.id ?? '0';
  const resumed = await readStream(`${other.url}/v1/tasks/${taskId}/stream`, { lastEventId: lastId }).finished;
  expect(Number(resumed[0]?.id)).toBe(Number(lastId) + 1);
  const indices = [...tokensOf(first.events).indices, ...tokensOf(resumed).indices];
  expect(indices).toEqual([...Array(30).keys()]);
});

test('ORCH-3026: a cancel sent to another gateway stops the holder at once — the relayed stream ends canceled, nothing after the ack', async () => {
  const taskId = await submitToFirstGateway({ max_tokens: 400 });
  const elsewhere = readStream(`${other.url}/v1/tasks/${taskId}/stream`);
  await waitFor(() => tokensOf(elsewhere.events).indices.length >= 2, 10_000, 'two tokens');
  const cancelled = await request(`${other.url}/v1/tasks/${taskId}/cancel`, { method: 'POST', headers: stack.authHeaders });
  expect(cancelled.statusCode).toBe(204);
  await cancelled.body.dump();
  const acknowledgedAt = performance.now();
  const events = await elsewhere.finished;
  expect(events.at(-1)).toEqual(expect.objectContaining({ event: 'end', data: expect.objectContaining({ canceled: true }) }));
  // The holder emitted its cancel frame before the 204 went out: tokens after it are only ones already in flight to this client.
  const lateTokens = events.filter((event) => event.event === 'token' && event.receivedAt > acknowledgedAt + 100);
  expect(lateTokens).toEqual([]);
  const result = (await stack.client.workflow.getHandle(taskWorkflowId(taskId)).result()) as { state: string };
  expect(result.state).toBe('cancelled');
});

test('ORCH-2002 design §2: a live stream survives the death of its gateway — a client that reconnects to another gateway with Last-Event-ID keeps receiving live tokens, each once and in order', async () => {
  const doomed = await stack.addGateway();
  const body = taskRequest(stack, { max_tokens: 120 });
  const taskId = String(body['task_id']);
  const submitted = await request(`${doomed.url}/v1/tasks`, { method: 'POST', headers: { 'content-type': 'application/json', ...stack.authHeaders }, body: JSON.stringify(body) });
  expect(submitted.statusCode).toBe(202);
  await submitted.body.dump();
  const first = readStream(`${doomed.url}/v1/tasks/${taskId}/stream`);
  await waitFor(() => tokensOf(first.events).indices.length >= 5, 10_000, 'five tokens from the admitting gateway');
  // Its listeners go away at once, as when the process dies: the client's stream breaks, the replica's pushes are refused.
  doomed.app.server.closeAllConnections();
  void doomed.close();
  first.close();
  const lastId = first.events.at(-1)?.id ?? '0';
  const resumed = readStream(`${stack.url}/v1/tasks/${taskId}/stream`, { lastEventId: lastId });
  const seenBefore = tokensOf(first.events).indices.length;
  await waitFor(() => tokensOf(resumed.events).indices.length >= 3, 10_000, 'tokens through the surviving gateway');
  // Live: these tokens arrive while the task still runs, not rebuilt from its result at the end.
  const description = await stack.client.workflow.getHandle(taskWorkflowId(taskId)).describe();
  expect(description.status.name).toBe('RUNNING');
  const events = await resumed.finished;
  expect(Number(events[0]?.id)).toBe(Number(lastId) + 1);
  const indices = [...tokensOf(first.events).indices, ...tokensOf(events).indices];
  expect(indices).toEqual([...Array(120).keys()]);
  expect(seenBefore).toBeLessThan(120);
  // The same text as the workflow's durable result, token for token.
  const result = (await stack.client.workflow.getHandle(taskWorkflowId(taskId)).result()) as { tokens: string[] };
  expect(tokensOf(first.events).text + tokensOf(events).text).toBe(result.tokens.join(''));
  expect(events.at(-1)).toEqual(expect.objectContaining({ event: 'end', data: expect.objectContaining({ tokens_out: 120 }) }));
});
