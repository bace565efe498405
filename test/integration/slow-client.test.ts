import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { request } from 'undici';
import { taskWorkflowId } from '../../core/ids';
import type { TaskResult } from '../../core/task-workflow-contract';
import { startMockEngine, type MockEngine } from '../../gpu-workers/engines/mock-llamacpp/mock-engine';
import { parsePrometheusText } from '../support/prometheus-text';
import { announceReadyReplica } from '../support/ready-record';
import { waitFor } from '../support/sse-client';
import { startTestStack, taskRequest, type TestStack } from '../support/stack';

/** The bound under test (the config's minimum): what one SSE connection may leave unread in the gateway. */
const MAX_BUFFERED_BYTES = 64 * 1024;
/**
 * ~55 bytes a token frame: about 650 KB for the slow client, far past the bound plus what the kernel's buffers
 * take (measured 35-170 KB with the client below; MBs on loopback with a default receive buffer).
 */
const SLOW_TASK_TOKENS = 12_000;
const NORMAL_TASK_TOKENS = 1_000;
const CTX = 16_384;
/** A burst is at most a worker's chunk: 1024 frames of at most ~64 bytes here. */
const MAX_BURST_BYTES = 1_024 * 64;

let engine: MockEngine;
let stack: TestStack;
beforeAll(async () => {
  // The mock as an external engine, for a context long enough to stream megabytes in one task.
  engine = await startMockEngine({ slots: 2, ttftMs: 1, interTokenMs: 0, contextSize: CTX });
  // No replica until both clients are subscribed: every frame after `started` then reaches them live.
  stack = await startTestStack({
    ctx: CTX,
    wallMs: 120_000,
    inProcessReplicas: 0,
    custom: { engineRuntime: { kind: 'external', url: engine.url }, streams: { max_buffered_bytes: MAX_BUFFERED_BYTES, replay_buffer_frames: 16_384 } },
  });
  await announceReadyReplica(stack, 2);
});
afterAll(async () => {
  await stack.stop();
  await engine.close();
});

async function submit(maxTokens: number): Promise<string> {
  const body = taskRequest(stack, { ctx: CTX, max_tokens: maxTokens });
  const response = await request(`${stack.url}/v1/tasks`, { method: 'POST', headers: { ...stack.authHeaders, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  expect(response.statusCode).toBe(202);
  await response.body.dump();
  return String(body['task_id']);
}

async function metric(name: string): Promise<number> {
  const response = await request(`${stack.url}/metrics`);
  return parsePrometheusText(await response.body.text()).samples.find((sample) => sample.name === name)?.value ?? Number.NaN;
}

async function readWhole(taskId: string, lastEventId?: number): Promise<string> {
  const response = await request(`${stack.url}/v1/tasks/${taskId}/stream`, {
    headers: { ...stack.authHeaders, accept: 'text/event-stream', ...(lastEventId === undefined ? {} : { 'last-event-id': String(lastEventId) }) },
  });
  expect(response.statusCode).toBe(200);
  return response.body.text();
}

/** Frames as written (keepalive comments dropped): `{ id, event, data }` per frame. */
function framesOf(text: string): { id: number; event: string; data: Record<string, unknown> }[] {
  return text
    .split('\n\n')
    .filter((block) => block.startsWith('id: '))
    .map((block) => {
      const field = (name: string): string => block.split('\n').find((line) => line.startsWith(`${name}: `))?.slice(name.length + 2) ?? '';
      return { id: Number(field('id')), event: field('event'), data: JSON.parse(field('data')) as Record<string, unknown> };
    });
}

/**
 * A client that never reads: a raw socket with a 4 KiB receive buffer and a small MSS (so the kernel's buffers on
 * both sides hold only ~35 KB), HTTP/1.0 (no chunked framing). It reads up to its `started` frame (then it is
 * subscribed), then nothing until told to (a line on stdin), and reports what it received before the server
 * closed the connection.
 */
function startSlowClient(taskId: string): { child: ChildProcessWithoutNullStreams; subscribed: Promise<void>; report: Promise<{ bytes: number; text: string }> } {
  const url = new URL(stack.url);
  const script = `
import socket, sys, json
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, 536)
s.connect((${JSON.stringify(url.hostname)}, ${url.port}))
s.sendall(b'GET /v1/tasks/${taskId}/stream HTTP/1.0\\r\\nAccept: text/event-stream\\r\\nAuthorization: ${stack.authHeaders['authorization'] ?? ''}\\r\\n\\r\\n')
data = b''
while b'event: started' not in data:
    data += s.recv(1)
print('subscribed', flush=True)
sys.stdin.readline()
while True:
    try:
        chunk = s.recv(65536)
    except ConnectionResetError:
        # The server's close can arrive as a reset: what the kernel held for us is then gone.
        break
    if not chunk:
        break
    data += chunk
print(json.dumps({'bytes': len(data), 'text': data.decode('utf-8', 'replace')}), flush=True)
`;
  const child = spawn('python3', ['-c', script]);
  const subscribed = new Promise<void>((resolve) => {
    const onData = (chunk: Buffer): void => {
      if (!chunk.toString('utf8').includes('subscribed')) return;
      child.stdout.off('data', onData);
      resolve();
    };
    child.stdout.on('data', onData);
  });
  const report = new Promise<{ bytes: number; text: string }>((resolve, reject) => {
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => process.stderr.write(chunk));
    child.once('exit', (code) => {
      const line = output.split('\n').find((candidate) => candidate.startsWith('{'));
      if (code !== 0 || !line) reject(new Error(`slow client exited ${code}: ${output.slice(0, 200)}`));
      else resolve(JSON.parse(line) as { bytes: number; text: string });
    });
  });
  return { child, subscribed, report };
}

test('issue 13: a client that never reads its stream is disconnected past streams.max_buffered_bytes (memory per stream bounded, counted), its task goes on and resumes with Last-Event-ID; another stream on the same gateway completes byte-exact', async () => {
  const slowTask = await submit(SLOW_TASK_TOKENS);
  const normalTask = await submit(NORMAL_TASK_TOKENS);
  const closesBefore = await metric('sse_slow_client_closes_total');

  const normal = readWhole(normalTask);
  const slow = startSlowClient(slowTask);
  await slow.subscribed;
  await waitFor(() => stack.gateway.hub.get(normalTask) !== undefined, 5_000, 'the normal stream');
  await stack.addPoolReplica(0);

  // The gateway closes the slow connection once its unread bytes pass the bound.
  await waitFor(async () => (await metric('sse_slow_client_closes_total')) > closesBefore, 30_000, 'the slow client to be disconnected');
  expect((await metric('sse_slow_client_closes_total')) - closesBefore).toBe(1);
  // The most any connection ever had waiting in the gateway: the bound plus one burst, never the whole stream.
  const peak = await metric('sse_buffered_bytes_max');
  expect(peak).toBeGreaterThan(MAX_BUFFERED_BYTES);
  expect(peak).toBeLessThanOrEqual(MAX_BUFFERED_BYTES + MAX_BURST_BYTES);

  // The other stream, on the same gateway at the same time, arrives whole: byte for byte what the replay buffer keeps.
  const normalText = await normal;
  const normalFrames = framesOf(normalText);
  expect(normalFrames.filter((frame) => frame.event === 'token').map((frame) => frame.data['i'])).toEqual(Array.from({ length: NORMAL_TASK_TOKENS }, (_unused, index) => index));
  expect(normalFrames.at(-1)?.event).toBe('end');
  expect(normalText.replaceAll(': keepalive\n\n', '')).toBe((await readWhole(normalTask)).replaceAll(': keepalive\n\n', ''));

  // The slow client, reading at last, finds its stream cut short (no end frame) and the connection closed (what
  // its kernel held may be lost with a reset): it resumes after the last whole frame it has, if any.
  slow.child.stdin.end('read\n');
  const received = await slow.report;
  expect(received.text.startsWith('HTTP/1.1 200')).toBe(true);
  const body = received.text.slice(received.text.indexOf('\r\n\r\n') + 4);
  const seen = framesOf(body.slice(0, body.lastIndexOf('\n\n') + 2));
  expect(seen.some((frame) => frame.event === 'end')).toBe(false);
  const lastSeen = seen.at(-1)?.id;

  // The task itself ran to its end; the resumed stream continues right after what the client has.
  const result = (await stack.client.workflow.getHandle(taskWorkflowId(slowTask)).result()) as TaskResult;
  expect(result.tokensOut).toBe(SLOW_TASK_TOKENS);
  const resumed = framesOf(await readWhole(slowTask, lastSeen));
  expect(resumed[0]?.id).toBe(lastSeen === undefined ? 0 : lastSeen + 1);
  const tokens = [...seen, ...resumed].filter((frame) => frame.event === 'token').map((frame) => String(frame.data['t']));
  expect(tokens.join('')).toBe(result.text);
  expect(resumed.at(-1)?.event).toBe('end');
}, 60_000);
