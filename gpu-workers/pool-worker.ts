import { join } from 'node:path';
import { hostname } from 'node:os';
import { Client } from '@temporalio/client';
import type { NativeConnection } from '@temporalio/worker';
import type { Logger } from 'pino';
import { cpuInferenceAllowed, findModel, POOL_DEFAULTS, runsCatalogModel } from '../core/config';
import type { OrchConfig, PoolConfig } from '../core/config';
import { replicaStartsDrained } from '../core/pool-state';
import { replicaId as formatReplicaId } from '../core/replica-status';
import type { ReplicaState, ReplicaStatus } from '../core/replica-status';
import type { EngineAdapter } from './engines/engine-adapter';
import type { EngineLauncher } from './pool-manager/engine-launcher';
import { probeNvidiaGpus } from './pool-manager/gpu-probe';
import { PoolQueueGate } from './pool-manager/pool-queue-membership';
import type { GpuProbeResult } from './pool-manager/gpu-probe';
import { systemMemoryProbe } from './pool-manager/headroom';
import type { MemoryProbe } from './pool-manager/headroom';
import { PidFile } from '../platform/pid-file';
import { createLlamaServerLauncher } from './pool-manager/llama-server-launcher';
import { readPoolState } from './pool-manager/pool-state-reader';
import { startReplicaControl } from './pool-manager/replica-control';
import type { PoolArtifacts } from './pool-manager/pool-artifacts';
import { QueuePoller } from './pool-manager/queue-poller';
import { FastStartServer } from './fast-start/fast-start-server';
import { ReplicaEventCounters } from './pool-manager/replica-events';
import { ReplicaStateMachine } from './pool-manager/replica-state';
import { ReplicaSupervisor } from './pool-manager/replica-supervisor';
import { RestartPolicy } from './pool-manager/restart-policy';
import { createRuntimeLauncher } from './pool-manager/runtime-launcher';
import { createTritonServerLauncher } from './pool-manager/triton-server-launcher';
import { createVllmLauncher } from './pool-manager/vllm-launcher';
import { ReplicaStatusPublisher } from './pool-manager/status-publisher';

export interface PoolWorkerOptions {
  readonly pool: PoolConfig;
  readonly replicaIndex: number;
  readonly namespace: string;
  readonly connection: NativeConnection;
  readonly internalToken: string;
  readonly logger: Logger;
  /** The model catalog and dev section; required for `llama-server` pools. */
  readonly config?: Pick<OrchConfig, 'models' | 'dev'> | undefined;
  /** Engine binary and model files; required for `llama-server` pools (cli/provision-pools.ts has one). */
  readonly artifacts?: PoolArtifacts | undefined;
  /** Injected by tests that simulate memory pressure or GPUs. */
  readonly memoryProbe?: MemoryProbe | undefined;
  readonly probeGpus?: (() => Promise<GpuProbeResult>) | undefined;
  /** Where the fast-start listener binds (config `placement.fast_start_host`); undefined: no fast starts (ADR 2026-12-06). */
  readonly fastStartHost?: string | undefined;
}

export interface RunningPoolWorker {
  readonly replicaId: string;
  /** The replica's current (or last) engine, for health checks and tests (slot state). */
  readonly engine: EngineAdapter;
  readonly engineVersion: string;
  readonly mockEngine: boolean;
  /** Resolves when the replica has stopped. */
  readonly done: Promise<void>;
  status(): ReplicaStatus;
  /** The llama-server process id while one serves (tests kill it to simulate a crash). */
  enginePid(): number | undefined;
  /** Resolves when the replica reaches a state `accept` likes; rejects after `timeoutMs`. */
  waitForStatus(accept: (status: ReplicaStatus) => boolean, timeoutMs?: number): Promise<ReplicaStatus>;
  stop(): Promise<void>;
}

/** Reaching one of these before Ready means the first start failed. */
const FAILED_STATES: ReadonlySet<ReplicaState> = new Set(['unready', 'stopped']);

function createLauncher(options: PoolWorkerOptions, logger: Logger): EngineLauncher {
  const { pool } = options;
  const runtime = pool.engine_runtime;
  if (!runsCatalogModel(runtime)) return createRuntimeLauncher(pool, logger);
  const { config, artifacts } = options;
  if (!config || !artifacts) throw new Error(`pool ${pool.id}: a ${runtime.kind} pool needs the model catalog and an artifact source`);
  if (!findModel(config, pool.model)) throw new Error(`pool ${pool.id}: model "${pool.model}" is not in models[]`);
  const engineOptions = {
    pool,
    models: (ref: string) => findModel(config, ref),
    allowCpuInference: cpuInferenceAllowed(config),
    artifacts,
    memory: options.memoryProbe ?? systemMemoryProbe,
    probeGpus: options.probeGpus ?? probeNvidiaGpus,
    logger,
    // Under the data dir, per replica: llama-server's slot erase (session KV eviction) needs a save path,
    // and the engine's pid record lets the next pool worker stop an engine a SIGKILLed one left behind.
    ...('data_dir' in config && typeof config.data_dir === 'string'
      ? {
          slotSavePath: join(config.data_dir, 'slots', formatReplicaId(pool.id, options.replicaIndex)),
          pidFile: new PidFile(join(config.data_dir, 'run', `${formatReplicaId(pool.id, options.replicaIndex)}.llama-server.json`), logger),
        }
      : {}),
  };
  // A Triton pool runs its own llama-server too, started the same way (triton-server-launcher.ts).
  if (runtime.kind === 'vllm') return createVllmLauncher({ ...engineOptions, runtime });
  return runtime.kind === 'triton-server' ? createTritonServerLauncher({ ...engineOptions, runtime }) : createLlamaServerLauncher({ ...engineOptions, runtime });
}

/**
 * One pool replica, its pool manager (design §4): supervises the engine through the lifecycle in
 * docs/pool-lifecycle.md, polls the pool's queue only while Ready, and publishes every state change
 * to its status workflow. Returns at once; the replica may still be starting.
 */
export function startPoolManager(options: PoolWorkerOptions): RunningPoolWorker {
  const { pool } = options;
  const replicaId = formatReplicaId(pool.id, options.replicaIndex);
  const logger = options.logger.child({ pool_id: pool.id, replica_id: replicaId, engine: pool.engine });
  const launcher = createLauncher(options, logger);
  const machine = new ReplicaStateMachine({
    poolId: pool.id,
    replicaId,
    host: hostname(),
    mockEngine: launcher.mockEngine,
    engine: pool.engine,
    modelRef: pool.model,
    quant: pool.quant ?? null,
    ctx: pool.ctx ?? POOL_DEFAULTS.ctx,
    samplerProfileVersion: pool.sampler_profile_version ?? 'v1',
  });
  const client = new Client({ connection: options.connection, namespace: options.namespace });
  const publisher = new ReplicaStatusPublisher(client, logger);
  const waiters = new Set<() => void>();
  machine.onChange((status) => {
    const { state, engine_version, model_digest, last_error, restarts, breaker_open, cpu_inference_override, mock_engine } = status;
    // These log fields are the replica's metrics until the /metrics endpoint lands (OC-POOL-3030).
    logger.info({ state, engine_version, model_digest, last_error, restarts, breaker_open, cpu_inference_override, mock_engine }, 'replica state');
    publisher.publish(status);
    for (const waiter of waiters) waiter();
  });
  machine.onLoadChange((status) => publisher.publishLoad(status));
  publisher.publish(machine.status);
  const restart = runsCatalogModel(pool.engine_runtime) ? pool.engine_runtime.restart : undefined;
  const events = new ReplicaEventCounters();
  const poller = new QueuePoller({
    pool,
    replicaId,
    namespace: options.namespace,
    connection: options.connection,
    internalToken: options.internalToken,
    logger,
    onSlotLoad: (busySlots) => machine.setSlotsBusy(busySlots),
    onEngineLoad: (load) => machine.setEngineLoad(load),
    events,
  });
  const fastStart = options.fastStartHost === undefined ? undefined : listenForFastStarts(options.fastStartHost, options.internalToken, logger, poller, machine);
  const supervisor = new ReplicaSupervisor({
    machine,
    launcher,
    policy: new RestartPolicy({
      initialBackoffMs: restart?.initial_backoff_ms ?? 1_000,
      maxBackoffMs: restart?.max_backoff_ms ?? 60_000,
      breakerFailures: restart?.breaker_failures ?? 5,
      breakerWindowMs: restart?.breaker_window_ms ?? 60_000,
      breakerCooldownMs: restart?.breaker_cooldown_ms ?? 300_000,
    }),
    poller,
    logger,
    events,
    modelRef: pool.model,
    declaredQuant: pool.quant,
    poolQueueGate: new PoolQueueGate({
      client,
      pool,
      replicaId,
      // The spec's two ways to say it (orchqueue-v1 §3): the pool field, or ORCH_REQUIRE_SAME_ENGINE=1 for every pool.
      requireSameEngineVersion: pool.require_same_engine_version ?? process.env['ORCH_REQUIRE_SAME_ENGINE'] === '1',
      logger,
    }),
    initialState: async () => {
      const state = await readPoolState(client, pool.id, logger);
      return { drained: state !== null && replicaStartsDrained(state.mode), modelRef: state?.model_ref ?? null };
    },
  });
  // The control queue is served for the whole life of the process (design §5), not only while Ready.
  const control = startReplicaControl({
    replicaId,
    namespace: options.namespace,
    connection: options.connection,
    identity: `${replicaId}@${hostname()}/control`,
    supervisor,
    machine,
    logger,
  });
  control.catch((error: unknown) => logger.error({ err: error }, 'replica control queue not served: drain and reload cannot reach this replica'));
  const done = supervisor
    .run()
    .finally(async () => {
      await (await control.catch(() => undefined))?.stop();
      await (await fastStart)?.close();
      await publisher.flush();
    });

  const waitForStatus = (accept: (status: ReplicaStatus) => boolean, timeoutMs = 60_000): Promise<ReplicaStatus> =>
    new Promise((resolve, reject) => {
      const check = (): void => {
        if (!accept(machine.status)) return;
        cleanup();
        resolve(machine.status);
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`replica ${replicaId} did not reach the expected state within ${timeoutMs} ms; it is ${machine.state} (${machine.status.last_error?.message ?? 'no error'})`));
      }, timeoutMs);
      const cleanup = (): void => {
        clearTimeout(timer);
        waiters.delete(check);
      };
      waiters.add(check);
      check();
    });

  return {
    replicaId,
    get engine(): EngineAdapter {
      const engine = supervisor.currentEngine;
      if (!engine) throw new Error(`replica ${replicaId} has no engine yet (${machine.state})`);
      return engine.adapter;
    },
    get engineVersion(): string {
      return supervisor.currentEngine?.properties.engineVersion ?? 'unknown';
    },
    mockEngine: launcher.mockEngine,
    done,
    status: () => machine.status,
    enginePid: () => supervisor.servingEngine?.pid,
    waitForStatus,
    stop: async () => {
      supervisor.requestStop();
      await done;
    },
  };
}

/**
 * Where a pool worker of this config listens for gateways: fast starts, and prompt counts for admission's
 * token budget (ORCH-3015), which it serves whether or not `placement.fast_start` is on — that flag only
 * stops gateways asking for fast starts (api/fast-start/fast-starter.ts).
 */
export function fastStartHostOf(config: Pick<OrchConfig, 'placement'>): string | undefined {
  return config.placement.fast_start_host;
}

/** A replica without its listener still serves from the queue: fast start is an optimisation. */
async function listenForFastStarts(host: string, internalToken: string, logger: Logger, poller: QueuePoller, machine: ReplicaStateMachine): Promise<FastStartServer | undefined> {
  try {
    const server = await FastStartServer.listen(host, internalToken, logger);
    poller.useFastStart(server);
    machine.setFastStartUrl(server.url);
    return server;
  } catch (error) {
    logger.warn({ err: error, host }, 'fast-start listener not started; tasks take the queue');
    return undefined;
  }
}

/** Starts a replica and resolves once it is Ready (or drained); rejects (and stops it) if the first start fails. */
export async function startPoolWorker(options: PoolWorkerOptions, readyTimeoutMs = 180_000): Promise<RunningPoolWorker> {
  const running = startPoolManager(options);
  try {
    // A replica of a drained pool comes up `drained` (engine live, not polling): started, as far as this goes.
    const status = await running.waitForStatus((candidate) => candidate.ready || candidate.state === 'drained' || FAILED_STATES.has(candidate.state), readyTimeoutMs);
    if (!status.ready && status.state !== 'drained') throw new Error(`replica ${running.replicaId} failed to start: ${status.last_error?.code ?? ''} ${status.last_error?.message ?? status.state}`);
    return running;
  } catch (error) {
    await running.stop();
    throw error;
  }
}
