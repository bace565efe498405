import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Connection } from '@temporalio/client';
import { request } from 'undici';
import { startNpmStack, stopProcess, type NpmStartStack } from '../support/npm-start';
import { waitFor } from '../support/sse-client';

/**
 * Issue 10 item 2: `npm run temporal:cluster` — the full Temporal server on PostgreSQL, built from the Go
 * module proxy and Debian's packages — and the stack on it (TEMPORAL_ADDRESS), end to end: a task through
 * the gateway, its workflow on the cluster's 8 history shards, found by its search attribute, the Web UI
 * answering. The first run builds the server (minutes; CI builds it before `npm test`, .ci/run).
 */
const CLUSTER = resolve(__dirname, '..', '..', 'dist', 'cli', 'temporal-cluster.js');
// The cluster derives its other ports from this one (-300 … +8199); away from the usual 7233 family.
const PORT = 21_000 + Math.floor(Math.random() * 4_000);
let cluster: ChildProcess;
let stack: NpmStartStack | undefined;
let address: string;

beforeAll(async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'llama-orch-cluster-'));
  cluster = spawn(process.execPath, [CLUSTER, '--port', String(PORT), '--data-dir', join(dataDir, 'cluster')], { stdio: ['ignore', 'pipe', 'inherit'] });
  address = await new Promise<string>((resolveAddress, reject) => {
    let out = '';
    cluster.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString('utf8');
      const match = /TEMPORAL_ADDRESS=(\S+)/.exec(out);
      if (match?.[1]) resolveAddress(match[1]);
    });
    cluster.once('exit', (code) => reject(new Error(`temporal:cluster exited with ${code}`)));
  });
  stack = await startNpmStack({ temporalAddress: address, model: 'mock:cluster', readyTimeoutMs: 90_000 });
}, 20 * 60_000);

afterAll(async () => {
  await stopProcess(stack?.child);
  await stopProcess(cluster);
});

test('issue 10: the stack runs on a real Temporal cluster (PostgreSQL, 8 shards) — a task streams, its workflow is found by TaskId, the Web UI answers', async () => {
  const apiUrl = stack?.apiUrl ?? '';
  const taskId = randomUUID();
  const admitted = await request(`${apiUrl}/v1/tasks`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ task_id: taskId, session_id: randomUUID(), workload: 'completion', model_ref: 'mock:cluster', engine: 'llamacpp', ctx: 1024, priority: 'interactive', prompt: 'p', max_tokens: 8, deadline_ms: 30_000 }),
  });
  expect(admitted.statusCode).toBe(202);
  await admitted.body.dump();
  const stream = await (await request(`${apiUrl}/v1/tasks/${taskId}/stream`)).body.text();
  expect((stream.match(/^event: token$/gm) ?? []).length).toBe(8);
  expect(stream).toMatch(/^event: end$/m);

  const connection = await Connection.connect({ address });
  try {
    const info = await connection.workflowService.getSystemInfo({});
    expect(info.serverVersion).toBe('1.32.2');
    const shards = await connection.workflowService.getClusterInfo({});
    expect(shards.historyShardCount).toBe(8);
    await waitFor(
      async () => {
        const found = await connection.workflowService.listWorkflowExecutions({ namespace: 'default', query: `TaskId="${taskId}"` });
        return (found.executions ?? []).length === 1;
      },
      20_000,
      'the task in visibility',
    );
  } finally {
    await connection.close();
  }
  const ui = await request(`http://127.0.0.1:${PORT + 1000}/`);
  expect(ui.statusCode).toBe(200);
  await ui.body.dump();
});
