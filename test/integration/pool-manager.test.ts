import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { temporal } from '@temporalio/proto';
import { Worker } from '@temporalio/worker';
import { ensureTinyModel } from '../../cli/model-artifacts';
import type { ModelArtifact } from '../../cli/model-artifacts';
import { replicaStatusWorkflowId } from '../../core/replica-status';
import type { ReplicaStatus } from '../../core/replica-status';
import { startPoolManager } from '../../gpu-workers/pool-worker';
import type { PoolWorkerOptions, RunningPoolWorker } from '../../gpu-workers/pool-worker';
import { createLogger } from '../../platform/logger';
import {
  PROVISION_TIMEOUT_MS,
  cpuReplicaOptions,
  llamaServerPool,
  poolHealth,
  postTask,
  provisionSyntheticEngine,
  syntheticModelEntry,
} from '../support/llama-server-pool';
import { readStream, tokensOf, waitFor } from '../support/sse-client';
import { startTestStack, taskRequest } from '../support/stack';
import type { StackOptions, TestStack } from '../support/stack';

/**
 * The pool manager (design §4) against a real llama-server serving the synthetic model, on this
 * machine's CPU under the development override. Failures are provoked for real: a wrong checksum,
 * a headroom requirement larger than the host, a SIGKILLed engine, a flag the engine rejects.
 */

const CONTEXT_TOKENS = 512;
const HISTORY_DIR = join(__dirname, '..', 'fixtures', 'histories');
let model: ModelArtifact;
const stacks: TestStack[] = [];
const managers: RunningPoolWorker[] = [];

beforeAll(async () => {
  model = await provisionSyntheticEngine();
}, PROVISION_TIMEOUT_MS);

afterAll(async () => {
  await Promise.all(managers.map((manager) => manager.stop()));
  await Promise.all(stacks.map((stack) => stack.stop()));
});

async function stackWith(options: StackOptions): Promise<TestStack> {
  const stack = await startTestStack({ ctx: CONTEXT_TOKENS, replicaOptions: cpuReplicaOptions, ...options });
  stacks.push(stack);
  return stack;
}

/** A replica of the stack's pool that is not awaited to be Ready, so its failures can be watched. */
function manageReplica(stack: TestStack, extra: Partial<PoolWorkerOptions> = {}): RunningPoolWorker {
  const pool = stack.config.pools[0];
  if (!pool) throw new Error('no pool');
  const manager = startPoolManager({
    pool,
    replicaIndex: 0,
    namespace: 'default',
    connection: stack.connection,
    internalToken: stack.internalToken,
    logger: createLogger('test', stack.logs.stream),
    config: stack.config,
    ...cpuReplicaOptions,
    ...extra,
  });
  managers.push(manager);
  return manager;
}

async function completeTask(stack: TestStack, overrides: Record<string, unknown> = {}): Promise<{ text: string; tokensOut: unknown }> {
  const body = taskRequest(stack, { ctx: CONTEXT_TOKENS, max_tokens: 8, ...overrides });
  const admitted = await postTask(stack.url, body);
  expect(admitted.statusCode).toBe(202);
  const events = await readStream(`${stack.url}/v1/tasks/${String(body['task_id'])}/stream`).finished;
  const end = events.at(-1);
  expect(end?.event).toBe('end');
  return { text: tokensOf(events).text, tokensOut: end?.data['tokens_out'] };
}

describe('a healthy llama-server replica', () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await stackWith({ custom: llamaServerPool({ restart: { initial_backoff_ms: 100 } }) });
  });

  test('ORCH-3002 ORCH-3049 ORCH-3032: Ready only after preload and the self-test; health reports engine_version and model_digest', async () => {
    const replica = stack.poolWorkers[0];
    expect(replica?.status()).toEqual(expect.objectContaining({
      state: 'ready',
      live: true,
      engine_version: expect.stringMatching(/^b\d+-[0-9a-f]+$/),
      model_digest: `sha256:${model.sha256}`,
      cpu_inference_override: true,
      mock_engine: false,
    }));
    const logLines = stack.logs.lines();
    expect(logLines.some((line) => line['msg'] === 'start-up self-test passed')).toBe(true);
    const states = logLines.filter((line) => line['msg'] === 'replica state' && line['replica_id'] === replica?.replicaId).map((line) => line['state']);
    expect(states).toEqual(['verifying', 'loading', 'self_test', 'ready']);

    await waitFor(async () => (await poolHealth(stack.url, stack.poolId))['ready'] === true, 10_000, 'health to say ready');
    const health = await poolHealth(stack.url, stack.poolId);
    expect(health).toEqual(expect.objectContaining({ live: true, ready: true, draining: false }));
    expect(health.metrics['cpu_inference_override']).toBe(true);
    expect(health.metrics.replicas[0]).toEqual(expect.objectContaining({
      replica_id: `${stack.poolId}-r0`,
      state: 'ready',
      engine_version: replica?.engineVersion,
      model_digest: `sha256:${model.sha256}`,
      cpu_inference_override: true,
    }));
    expect(health.metrics.replicas[0]?.['mock_engine']).toBeUndefined();

    const { tokensOut, text } = await completeTask(stack);
    expect(tokensOut).toBe(8);
    expect(text.length).toBeGreaterThan(0);
  });

  test('ORCH-3014: the pool ctx is the engine context; a larger ctx is rejected before enqueue with INVALID_PARAMS', async () => {
    const properties = await stack.poolWorkers[0]?.engine.properties();
    expect(properties?.contextSize).toBe(CONTEXT_TOKENS);
    const rejected = await postTask(stack.url, taskRequest(stack, { ctx: CONTEXT_TOKENS + 1 }));
    expect(rejected.statusCode).toBe(400);
    expect(rejected.body['code']).toBe('INVALID_PARAMS');
  });

  test('ORCH-3026: a cancel through the public API frees the llama-server slot', async () => {
    const body = taskRequest(stack, { ctx: CONTEXT_TOKENS, max_tokens: CONTEXT_TOKENS - 64, prompt: 'Once' });
    const taskId = String(body['task_id']);
    expect((await postTask(stack.url, body)).statusCode).toBe(202);
    const reading = readStream(`${stack.url}/v1/tasks/${taskId}/stream`);
    await waitFor(() => tokensOf(reading.events).indices.length >= 2, 10_000, 'two tokens');
    const engine = stack.poolWorkers[0]?.engine;
    const cancelled = await fetch(`${stack.url}/v1/tasks/${taskId}/cancel`, { method: 'POST', headers: stack.authHeaders });
    expect(cancelled.status).toBe(204);
    const events = await reading.finished;
    expect(events.at(-1)?.data['canceled']).toBe(true);
    await engine?.confirmStopped(0, 5_000);
    expect((await engine?.slotControl?.list())?.every((slot) => !slot.isProcessing)).toBe(true);
    expect((await completeTask(stack)).tokensOut).toBe(8);
  });

  test('ORCH-3038 OC-POOL-3010: an engine crash makes the replica Unready, drains it and restarts it; health shows the cause', async () => {
    const replica = stack.poolWorkers[0];
    if (!replica) throw new Error('no replica');
    const firstPid = replica.enginePid();
    expect(firstPid).toBeDefined();
    process.kill(firstPid ?? 0, 'SIGKILL');
    const seen = new Set<string>();
    const recovered = await replica.waitForStatus((status) => {
      seen.add(status.state);
      return status.state === 'ready' && status.restarts === 1;
    }, 30_000);
    expect(recovered.last_error).toEqual(expect.objectContaining({ code: 'WORKER_RESET', kind: 'engine_exit' }));
    expect(recovered.last_error?.message).toContain('SIGKILL');
    expect(replica.enginePid()).not.toBe(firstPid);
    // The running engine's pid is on record, so a pool worker that dies by SIGKILL leaves no orphan behind.
    const record = JSON.parse(readFileSync(join(stack.config.data_dir, 'run', `${replica.replicaId}.llama-server.json`), 'utf8')) as { pid: number };
    expect(record.pid).toBe(replica.enginePid());
    expect((await completeTask(stack)).tokensOut).toBe(8);

    const states = stack.logs.lines().filter((line) => line['msg'] === 'replica state' && line['replica_id'] === replica.replicaId).map((line) => line['state']);
    expect(states.slice(4, 11)).toEqual(['draining', 'unready', 'restarting', 'verifying', 'loading', 'self_test', 'ready']);
    await waitFor(async () => (await poolHealth(stack.url, stack.poolId)).metrics.replicas[0]?.['restarts'] === 1, 10_000, 'health to count the restart');
    const health = await poolHealth(stack.url, stack.poolId);
    expect(health['ready']).toBe(true);
    expect(String(health['last_error'])).toMatch(/^WORKER_RESET \(engine_exit\)/);
  });

  test('the replica status workflow replays; ORCH_RECORD_HISTORIES=1 saves its history as a fixture', async () => {
    const handle = stack.client.workflow.getHandle(replicaStatusWorkflowId(stack.poolId, `${stack.poolId}-r0`));
    const status = await handle.query<ReplicaStatus | null>('replicaStatus');
    expect(status?.state).toBe('ready');
    const history = await handle.fetchHistory();
    const bundle = readFileSync(String(process.env['ORCH_TEST_WORKFLOW_BUNDLE']), 'utf8');
    await Worker.runReplayHistory({ workflowBundle: { code: bundle } }, history, 'replica-status');
    if (process.env['ORCH_RECORD_HISTORIES'] === '1') writeFileSync(
        join(HISTORY_DIR, 'replica-status.json'),
        JSON.stringify(temporal.api.history.v1.History.toObject(temporal.api.history.v1.History.fromObject(history), { longs: String, enums: String, bytes: String }), null, 1),
      );
  });
});

describe('start-up failures', () => {
  test('ORCH-3037 ORCH-3042: a model whose checksum does not match is never loaded; the replica is Unready with UNTRUSTED_ARTIFACT', async () => {
    const stack = await stackWith({ inProcessReplicas: 0, custom: llamaServerPool({}, syntheticModelEntry({ sha256: '0'.repeat(64) })) });
    const replica = manageReplica(stack);
    const status = await replica.waitForStatus((candidate) => candidate.last_error !== null, 30_000);
    expect(status.state).toBe('unready');
    expect(status.last_error).toEqual(expect.objectContaining({ code: 'UNTRUSTED_ARTIFACT', kind: 'untrusted_artifact' }));
    expect(status.last_error?.message).toContain(model.sha256);
    expect(replica.enginePid()).toBeUndefined();
    await waitFor(async () => (await poolHealth(stack.url, stack.poolId))['last_error'] !== 'no replica is ready', 10_000, 'health to show the cause');
    const health = await poolHealth(stack.url, stack.poolId);
    expect(health).toEqual(expect.objectContaining({ ready: false }));
    expect(String(health['last_error'])).toMatch(/^UNTRUSTED_ARTIFACT/);
  });

  test('ORCH-3003 OC-POOL-3002: preload fails fast when host RAM headroom is insufficient, and retries with backoff', async () => {
    const stack = await stackWith({
      inProcessReplicas: 0,
      custom: llamaServerPool({ host_ram_headroom_bytes: 2 ** 52, restart: { initial_backoff_ms: 50, breaker_failures: 100 } }),
    });
    const replica = manageReplica(stack);
    const status = await replica.waitForStatus((candidate) => candidate.restarts >= 2, 30_000);
    expect(status.last_error).toEqual(expect.objectContaining({ code: 'POOL_UNREADY', kind: 'insufficient_host_ram' }));
    expect(status.last_error?.message).toMatch(/need 4294967296 MiB/);
    expect(status.ready).toBe(false);
  });

  test('ORCH-3003 ORCH-3052: insufficient free VRAM on a GPU host is refused before load too, and retried (memory probe injected)', async () => {
    const stack = await stackWith({ inProcessReplicas: 0, custom: llamaServerPool({ restart: { initial_backoff_ms: 50 } }) });
    const replica = manageReplica(stack, {
      probeGpus: () => Promise.resolve({ nvidiaGpus: 1, detail: 'test GPU' }),
      artifacts: {
        llamaServer: async () => ({ ...(await cpuReplicaOptions.artifacts!.llamaServer()), backend: 'cuda' }),
        model: (entry) => cpuReplicaOptions.artifacts!.model(entry),
      },
      memoryProbe: {
        hostFreeBytes: () => 64 * 2 ** 30,
        hostTotalBytes: () => 128 * 2 ** 30,
        // A GPU big enough in all, with 10 MiB free now (another process holds the rest): waiting may help.
        deviceMemory: (devices) => Promise.resolve(devices.map((device) => ({ device, totalBytes: 80 * 2 ** 30, freeBytes: 10 * 2 ** 20 }))),
      },
    });
    const status = await replica.waitForStatus((candidate) => candidate.last_error !== null, 30_000);
    expect(status.last_error).toEqual(expect.objectContaining({ code: 'POOL_UNREADY', kind: 'insufficient_vram' }));
    expect(status.last_error?.message).toMatch(/^insufficient VRAM headroom on GPU 0: share 1\.00 needs \d+ MiB \(weights \d+ MiB, KV cache \d+ MiB \(ctx 512 × 1 slot\)/);
    expect(status.cpu_inference_override).toBe(false);
    expect(replica.enginePid()).toBeUndefined();
  });

  test('OC-POOL-3011 ORCH-3053: an engine that dies at every start opens the circuit breaker after the configured failures', async () => {
    const stack = await stackWith({
      inProcessReplicas: 0,
      custom: llamaServerPool({
        extra_args: ['--no-such-flag-for-the-breaker-test'],
        restart: { initial_backoff_ms: 20, breaker_failures: 3, breaker_window_ms: 60_000, breaker_cooldown_ms: 600_000 },
      }),
    });
    const replica = manageReplica(stack);
    const status = await replica.waitForStatus((candidate) => candidate.breaker_open, 30_000);
    expect(status).toEqual(expect.objectContaining({ state: 'breaker_open', restarts: 2, ready: false }));
    expect(status.next_attempt_at).not.toBeNull();
    expect(status.last_error).toEqual(expect.objectContaining({ code: 'WORKER_RESET', kind: 'engine_exit' }));
    expect(status.last_error?.message).toContain('no-such-flag-for-the-breaker-test');
    await waitFor(async () => (await poolHealth(stack.url, stack.poolId)).metrics.replicas[0]?.['breaker_open'] === true, 10_000, 'health to show the breaker');
  });

  test('ORCH-1101 OC-POOL-3012: without an NVIDIA GPU and without the override the replica refuses to serve (POOL_UNAVAILABLE)', async () => {
    const stack = await stackWith({ inProcessReplicas: 0, custom: { ...llamaServerPool(), dev: { allow_cpu_inference: false } } });
    const previous = process.env['ORCH_DEV_ALLOW_CPU_INFERENCE'];
    delete process.env['ORCH_DEV_ALLOW_CPU_INFERENCE'];
    try {
      const replica = manageReplica(stack);
      const status = await replica.waitForStatus((candidate) => candidate.last_error !== null, 30_000);
      expect(status).toEqual(expect.objectContaining({ state: 'unready', restarts: 0, live: false }));
      expect(status.last_error).toEqual(expect.objectContaining({ code: 'POOL_UNAVAILABLE', kind: 'no_gpu' }));
      expect(status.last_error?.message).toContain('ORCH-1101');
      expect(replica.enginePid()).toBeUndefined();
    } finally {
      if (previous !== undefined) process.env['ORCH_DEV_ALLOW_CPU_INFERENCE'] = previous;
    }
  });
});

describe('the tiny real model', () => {
  let tiny: ModelArtifact;
  beforeAll(async () => {
    tiny = await ensureTinyModel();
  }, PROVISION_TIMEOUT_MS);

  test('smoke: SmolLM2-135M answers through the public API on a llama-server pool, its digest verified', async () => {
    const stack = await stackWith({ custom: llamaServerPool({}, { ref: 'smollm2-135m-instruct-q4_1', source: { kind: 'pypi-smollm2' } }) });
    expect(stack.poolWorkers[0]?.status().model_digest).toBe(`sha256:${tiny.sha256}`);
    expect((await stack.poolWorkers[0]?.engine.properties())?.modelPath).toBe(tiny.path);
    const { text, tokensOut } = await completeTask(stack, { prompt: 'The capital of France is', max_tokens: 8 });
    expect(tokensOut).toEqual(expect.any(Number));
    expect(text.trim().length).toBeGreaterThan(0);
  });
});
