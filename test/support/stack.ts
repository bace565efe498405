import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Client } from '@temporalio/client';
import type { NativeConnection } from '@temporalio/worker';
import type { Logger } from 'pino';
import { startGateway, type RunningGateway } from '../../api/gateway';
import { hashApiKey, mintApiKey } from '../../api/auth/api-keys';
import { parseConfig, type OrchConfig } from '../../core/config';
import { fastStartHostOf, startPoolWorker, type PoolWorkerOptions, type RunningPoolWorker } from '../../gpu-workers/pool-worker';
import { createLogger } from '../../platform/logger';
import { connectWorker } from '../../platform/temporal-connections';
import { startWorkflowWorker, type RunningWorkflowWorker } from '../../workflows/workflow-worker';
import { captureLogs, type LogCapture } from './log-capture';
import type { Engine } from '../../core/engines';

export interface PoolOverrides {
  readonly slots?: number;
  readonly ttftMs?: number;
  readonly interTokenMs?: number;
  readonly idleMs?: number;
  readonly wallMs?: number;
  readonly heartbeatMs?: number;
  readonly ctx?: number;
  readonly replicas?: number;
  readonly queue?: { readonly capacity?: number; readonly full_policy?: 'reject' | 'drop-lru' | 'shed-low-priority' };
  readonly priorities?: readonly { readonly name: 'interactive' | 'batch'; readonly queue_capacity?: number; readonly rate_limit_rps?: number }[];
  readonly policyPlugin?: Record<string, unknown>;
}

export interface TestStack {
  readonly url: string;
  readonly config: OrchConfig;
  readonly poolId: string;
  readonly model: string;
  readonly client: Client;
  readonly internalToken: string;
  /** Tenant `tenant-a`'s key (data + control scopes) as request headers; send them on every /v1 call. */
  readonly authHeaders: Readonly<Record<string, string>>;
  /** The raw test keys: tenant-a (data + control), tenant-b (data + control), tenant-a's data-only key. */
  readonly apiKeys: typeof TEST_API_KEYS;
  readonly temporalAddress: string;
  readonly logs: LogCapture;
  readonly gateway: RunningGateway;
  readonly poolWorkers: RunningPoolWorker[];
  /** The Temporal connection the stack's workers share (tests start extra replicas on it). */
  readonly connection: NativeConnection;
  /** Starts another in-process replica of the test pool. */
  addPoolReplica(replicaIndex: number): Promise<RunningPoolWorker>;
  /** Starts another gateway on the same config and Temporal (several gateways behind a load balancer). */
  addGateway(): Promise<RunningGateway>;
  stop(): Promise<void>;
}

/** API keys for the test run: random per process, given to the gateway only as SHA-256 hashes (ORCH-3035). */
export const TEST_API_KEYS = { tenantA: mintApiKey(), tenantB: mintApiKey(), tenantAData: mintApiKey() } as const;
const TEST_AUTH_CONFIG = {
  keys: [
    { id: 'test-a', tenant: 'tenant-a', scopes: ['data', 'control'], sha256: hashApiKey(TEST_API_KEYS.tenantA) },
    { id: 'test-b', tenant: 'tenant-b', scopes: ['data', 'control'], sha256: hashApiKey(TEST_API_KEYS.tenantB) },
    { id: 'test-a-data', tenant: 'tenant-a', scopes: ['data'], sha256: hashApiKey(TEST_API_KEYS.tenantAData) },
  ],
};
export const TEST_AUTH_HEADERS: Readonly<Record<string, string>> = { authorization: `Bearer ${TEST_API_KEYS.tenantA}` };

/** One internal token per test process, as one deployment shares one: every stack's workers poll the same workflow queue. */
const INTERNAL_TOKEN = randomUUID();

export function temporalAddressForTests(): string {
  const address = process.env['ORCH_TEST_TEMPORAL_ADDRESS'];
  if (!address) throw new Error('no Temporal dev server: the jest globalSetup starts one (unset ORCH_TEST_NO_TEMPORAL)');
  return address;
}

/** A test config: one mock pool whose id is unique to this stack, so its task queue is its own. */
export function testConfig(overrides: PoolOverrides = {}, poolReplicas = 1, custom: CustomPool = {}): { config: OrchConfig; poolId: string; model: string } {
  const poolId = `t-${randomUUID().slice(0, 8)}`;
  const model = custom.model ?? `mock:${poolId}`;
  const { config } = parseConfig({
    ...(custom.models ? { models: custom.models } : {}),
    ...(custom.dev ? { dev: custom.dev } : {}),
    // Auth is on in tests as in the embedded default; a test about something else may turn it off.
    auth: custom.auth ?? TEST_AUTH_CONFIG,
    ...(custom.quotas ? { quotas: custom.quotas } : {}),
    ...(custom.slo ? { slo: custom.slo } : {}),
    ...(custom.placement ? { placement: custom.placement } : {}),
    ...(custom.sessions ? { sessions: custom.sessions } : {}),
    pools: [
      {
        id: poolId,
        engine: custom.engine ?? 'llamacpp',
        model,
        ctx: overrides.ctx ?? 2048,
        devices: [0],
        replicas: overrides.replicas ?? poolReplicas,
        engine_runtime: {
          kind: 'mock',
          ttft_ms: overrides.ttftMs ?? 5,
          inter_token_ms: overrides.interTokenMs ?? 2,
          slots: overrides.slots ?? 4,
        },
        timeouts: {
          wall_ms: overrides.wallMs ?? 30_000,
          idle_ms: overrides.idleMs ?? 5_000,
          heartbeat_ms: overrides.heartbeatMs ?? 2_000,
        },
        ...(overrides.queue ? { queue: overrides.queue } : {}),
        ...(overrides.priorities ? { admission: { priorities: overrides.priorities } } : {}),
        ...(overrides.policyPlugin ? { policy_plugin: overrides.policyPlugin } : {}),
        ...(custom.engineRuntime ? { engine_runtime: custom.engineRuntime } : {}),
        ...(custom.determinism ? { determinism: custom.determinism } : {}),
      },
    ],
    streams: { replay_buffer_frames: 4096, linger_ms: 60_000, ...custom.streams },
    ...(custom.gateway ? { gateway: custom.gateway } : {}),
  });
  return { config, poolId, model };
}

/** A pool other than the mock one: a llama-server runtime, its model catalog and the dev section. */
export interface CustomPool {
  /** The pool's engine; llamacpp when absent. */
  readonly engine?: Engine;
  readonly model?: string;
  readonly models?: readonly unknown[];
  readonly dev?: Record<string, unknown>;
  readonly engineRuntime?: Record<string, unknown>;
  /** The pool's determinism posture (a llama-server pool of several slots must say `best_effort`). */
  readonly determinism?: 'strict' | 'best_effort';
  /** Top-level sections (issue 5): `auth` replaces the test keys; `quotas`, `slo` as in the config. */
  readonly auth?: Record<string, unknown>;
  readonly quotas?: Record<string, unknown>;
  readonly slo?: Record<string, unknown>;
  /** `placement` (affinity_wait_ms) and `sessions` (ttl_ms, max_turns, max_entries). */
  readonly placement?: Record<string, unknown>;
  readonly sessions?: Record<string, unknown>;
  /** `gateway` limits (body, concurrency, connections, timeouts) and `streams` fields (max_buffered_bytes); the listen address stays the test's. */
  readonly gateway?: Record<string, unknown>;
  readonly streams?: Record<string, unknown>;
}

export interface StackOptions extends PoolOverrides {
  readonly custom?: CustomPool;
  /** Passed to every replica (llama-server pools need artifacts; tests may inject probes). */
  readonly replicaOptions?: Pick<PoolWorkerOptions, 'artifacts' | 'memoryProbe' | 'probeGpus'>;
  /** In-process pool replicas to start (0 when the test starts its own, e.g. as child processes). */
  readonly inProcessReplicas?: number;
}

/** Gateway, workflow worker and pool replicas in this process, on the run's real Temporal server. */
export async function startTestStack(options: StackOptions = {}): Promise<TestStack> {
  const temporalAddress = temporalAddressForTests();
  const { config, poolId, model } = testConfig(options, 1, options.custom);
  const pool = config.pools[0];
  if (!pool) throw new Error('no pool');
  const logs = captureLogs();
  const logger: Logger = createLogger('test', logs.stream);
  const internalToken = INTERNAL_TOKEN;
  // As `npm start` does: the gateway's client shares the workflow worker's NativeConnection (eager starts).
  const workerConnection: NativeConnection = await connectWorker(temporalAddress, logger);
  const client = new Client({ connection: workerConnection, namespace: 'default' });
  const bundlePath = process.env['ORCH_TEST_WORKFLOW_BUNDLE'];
  const workflowWorker: RunningWorkflowWorker = await startWorkflowWorker({
    connection: workerConnection,
    namespace: 'default',
    internalToken,
    logger,
    workflowBundleCode: bundlePath ? readFileSync(bundlePath, 'utf8') : undefined,
  });
  let gateway: RunningGateway;
  try {
    gateway = await startGateway({ config, client, logger, internalToken, eagerWorkflowStart: true, listen: { host: '127.0.0.1', port: 0 } });
  } catch (error) {
    // A gateway that refuses to start (e.g. a bad policy plugin) must not leave a worker polling.
    await workflowWorker.stop();
    await workerConnection.close();
    throw error;
  }
  const poolWorkers: RunningPoolWorker[] = [];
  const replicaConnections: NativeConnection[] = [];
  const addPoolReplica = async (replicaIndex: number): Promise<RunningPoolWorker> => {
    // The SDK allows one worker per task queue on a connection: a second live replica gets its own, as a second process would.
    let connection = workerConnection;
    if (poolWorkers.length > 0) {
      connection = await connectWorker(temporalAddress, logger);
      replicaConnections.push(connection);
    }
    const replica = await startPoolWorker({ pool, replicaIndex, namespace: 'default', connection, internalToken, logger, config, fastStartHost: fastStartHostOf(config), ...options.replicaOptions });
    poolWorkers.push(replica);
    return replica;
  };
  for (let index = 0; index < (options.inProcessReplicas ?? 1); index += 1) await addPoolReplica(index);
  const extraGateways: RunningGateway[] = [];
  const addGateway = async (): Promise<RunningGateway> => {
    const extra = await startGateway({ config, client, logger, internalToken, eagerWorkflowStart: true, listen: { host: '127.0.0.1', port: 0 } });
    extraGateways.push(extra);
    return extra;
  };

  return {
    url: gateway.url,
    config,
    poolId,
    model,
    client,
    internalToken,
    authHeaders: TEST_AUTH_HEADERS,
    apiKeys: TEST_API_KEYS,
    temporalAddress,
    logs,
    gateway,
    poolWorkers,
    connection: workerConnection,
    addPoolReplica,
    addGateway,
    stop: async () => {
      await Promise.all(poolWorkers.map((replica) => replica.stop()));
      await Promise.all(replicaConnections.map((connection) => connection.close()));
      await Promise.all(extraGateways.map((extra) => extra.close()));
      await gateway.close();
      await workflowWorker.stop();
      await workerConnection.close();
    },
  };
}

/** Waits until the stack's gateway sees `count` Ready replicas of the pool (placement reads that view). */
export async function waitForReadyReplicas(stack: Pick<TestStack, 'gateway' | 'poolId'>, count: number): Promise<void> {
  for (;;) {
    await stack.gateway.replicas.refresh();
    const ready = stack.gateway.replicas.replicas(stack.poolId).filter((status) => status.state === 'ready' && status.replica_set_key !== null);
    if (ready.length >= count) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** A valid TaskRequest for the stack's pool; fields can be overridden or removed (value undefined). */
export function taskRequest(stack: Pick<TestStack, 'model'>, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const base: Record<string, unknown> = {
    task_id: randomUUID(),
    session_id: randomUUID(),
    workload: 'completion',
    model_ref: stack.model,
    engine: 'llamacpp',
    ctx: 1024,
    priority: 'interactive',
    seed: 42,
    prompt: 'Write a haiku about queues.',
    max_tokens: 16,
    deadline_ms: 30_000,
  };
  for (const [key, value] of Object.entries(overrides)) {
    if (value === undefined) delete base[key];
    else base[key] = value;
  }
  return base;
}
