import { createServer } from 'node:http';
import { httpUrl } from '../platform/http-url';
import type { Client } from '@temporalio/client';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { OrchConfig } from '../core/config';
import type { SupervisedProcessStatus } from '../core/supervised-process';
import { parseReplicaIdentity } from '../core/ids';
import { buildApp } from './app';
import { createPolicyHost, type PolicyHost } from '../policy';
import { AdmissionController } from './admission/admission-controller';
import { PoolLedger } from './admission/pool-ledger';
import { RateLimiter } from './admission/rate-limiter';
import { TemporalBacklog } from './admission/temporal-backlog';
import { PoolStateDirectory } from './pool-state-directory';
import { ReplicaDirectory } from './replica-directory';
import { FastStarter } from './fast-start/fast-starter';
import { PromptTokenBudget } from './admission/prompt-token-budget';
import { PlacementPlanner } from './placement/placement-planner';
import { SessionRegistry } from './sessions/session-registry';
import { ReplicaFrameMetrics } from './observability/replica-frame-metrics';
import { configuredSlots } from './pool-selection';
import { StreamHub } from './stream-hub';
import { AdmissionGuards } from './admission/admission-guards';
import { ConfigReloader } from './config-reloader';
import { TenantQuotas } from './admission/tenant-quota';
import { loadApiKeys } from './auth/api-keys';
import { Authenticator } from './auth/authenticator';
import { createGatewayObservability, registerGatewayCollectors } from './observability/gateway-observability';
import { registerReplicaCollectors } from './observability/replica-metrics';

/** How often each gateway reads the pool queues' backlog from Temporal (the cross-gateway queue bound). */
const BACKLOG_REFRESH_MS = 250;
/** How often each gateway re-reads the replicas' status records (placement, replica sets, health metrics). */
const REPLICA_DIRECTORY_REFRESH_MS = 1_000;
/** How often each gateway re-reads the pools' desired state: another gateway's drain refuses admission here within this. */
const POOL_STATE_REFRESH_MS = 1_000;

export interface GatewayOptions {
  readonly config: OrchConfig;
  readonly client: Client;
  readonly logger: Logger;
  readonly internalToken: string;
  /** True when `client` shares the NativeConnection of a workflow worker in this process. */
  readonly eagerWorkflowStart?: boolean | undefined;
  /** Where relative policy plugin paths resolve (the config file's folder); the working directory by default. */
  readonly configDir?: string | undefined;
  /** The file `config` came from: `POST /v1/config/reload` and SIGHUP re-read it (ORCH-3031). */
  readonly configPath?: string | undefined;
  /** Overrides config.gateway.host/port (tests listen on port 0). */
  readonly listen?: { readonly host: string; readonly port: number } | undefined;
  /**
   * A listener of this process alone for the internal channel, when the public port is shared by several
   * gateway processes (cli/gateway-process.ts): workers must reach this gateway, not any of them.
   */
  readonly internalListen?: { readonly host: string } | undefined;
  /** The processes `npm start` supervises (cli/supervision/); GET /health and the metrics show them. */
  readonly supervision?: (() => readonly SupervisedProcessStatus[]) | undefined;
}

export interface RunningGateway {
  readonly app: FastifyInstance;
  readonly hub: StreamHub;
  readonly admission: AdmissionController;
  /** The replicas this gateway places on (tests wait for it to see them Ready). */
  readonly replicas: ReplicaDirectory;
  /** Base URL of the public API. */
  readonly url: string;
  /** Hot reload of the config file (SIGHUP in gateway-main); throws a typed error when refused. */
  readonly configReloader: ConfigReloader;
  close(): Promise<void>;
}

/** Starts the gateway and listens; the internal URL defaults to the address it actually bound. */
export async function startGateway(options: GatewayOptions): Promise<RunningGateway> {
  const { config } = options;
  const hub = new StreamHub({ replayCapacity: config.streams.replay_buffer_frames, lingerMs: config.streams.linger_ms });
  const ledger = new PoolLedger();
  const backlog = new TemporalBacklog(options.client, config.pools.map((pool) => pool.id), BACKLOG_REFRESH_MS, options.logger);
  const policies = new Map<string, PolicyHost>();
  try {
    for (const pool of config.pools) {
      // A plugin that cannot load fails start-up here, with the plugin and the reason named.
      policies.set(pool.id, await createPolicyHost(pool.policy_plugin, options.logger.child({ pool_id: pool.id }), { baseDir: options.configDir ?? process.cwd() }));
    }
  } catch (error) {
    backlog.stop();
    await Promise.all([...policies.values()].map((policy) => policy.close()));
    throw error;
  }
  const replicas = new ReplicaDirectory({
    client: options.client,
    pools: config.pools,
    refreshMs: REPLICA_DIRECTORY_REFRESH_MS,
    logger: options.logger,
    // The backlog lists pollers by worker identity (llama-orch/<pool>/<replica>/<engine_version>): take the replica id.
    pollingReplicaIds: (poolId) => (backlog.view(poolId)?.readyReplicas ?? []).flatMap((identity) => parseReplicaIdentity(identity)?.replicaId ?? []),
  });
  replicas.start();
  const poolStates = new PoolStateDirectory(options.client, config.pools, POOL_STATE_REFRESH_MS, options.logger);
  poolStates.start();
  const observability = createGatewayObservability(config, options.logger);
  const quotas = new TenantQuotas(config.quotas, ledger);
  const admission = new AdmissionController({
    replicaRecords: (poolId) => replicas.replicas(poolId),
    tenantTokens: observability.telemetry.tenantTokens,
    ledger,
    backlog,
    limiter: new RateLimiter(),
    policies,
    // What the replicas publish beats the config: an `external` engine's slots are known only from it.
    slotsOf: (poolId) => {
      const published = replicas.replicas(poolId).reduce((sum, replica) => sum + (replica.ready ? replica.slots_total : 0), 0);
      const pool = config.pools.find((candidate) => candidate.id === poolId);
      return published > 0 ? published : pool ? configuredSlots(pool) : 1;
    },
    logger: options.logger,
    guards: new AdmissionGuards(observability.breaker, quotas),
  });
  registerReplicaCollectors(config, observability.metrics, replicas);
  registerGatewayCollectors(config, observability, {
    depth: (poolId) => admission.depth(poolId),
    readyReplicas: (poolId) => backlog.view(poolId)?.readyReplicas.length ?? 0,
    quotas,
    supervision: options.supervision ?? (() => []),
  });
  const sessions = new SessionRegistry({ ttlMs: config.sessions.ttl_ms, maxTurns: config.sessions.max_turns, maxEntries: config.sessions.max_entries });
  observability.metrics.addCollector(() => observability.metrics.set('sessionsActive', {}, sessions.size));
  const keys = loadApiKeys(config, { configDir: options.configDir ?? process.cwd() });
  const auth = new Authenticator(config.auth.mode, keys);
  if (auth.enabled) options.logger.info({ api_keys: keys.size }, 'API key authentication on');
  else options.logger.warn('API key authentication is DISABLED by config (auth.mode: disabled); X-Client-Id names clients unchecked');
  const configReloader = new ConfigReloader(config, { path: options.configPath, configDir: options.configDir ?? process.cwd(), quotas, auth, slo: observability.slo, logger: options.logger });
  const fastStarter = new FastStarter({
    replicas,
    internalToken: options.internalToken,
    enabled: config.placement.fast_start,
    waitMs: config.placement.affinity_wait_ms,
    depth: (poolId) => admission.depth(poolId),
    logger: options.logger,
  });
  ledger.onForget((taskId) => fastStarter.forget(taskId));
  const promptBudget = new PromptTokenBudget({ replicas, internalToken: options.internalToken, metrics: observability.metrics, poolIds: config.pools.map((pool) => pool.id), logger: options.logger });
  const listen = options.listen ?? { host: config.gateway.host, port: config.gateway.port };
  let internalUrl = config.gateway.internal_url ?? '';
  const app = buildApp({
    // Read on every request: a config hot reload swaps it in one step (api/config-reloader.ts).
    get config() {
      return configReloader.config;
    },
    configReloader,
    client: options.client,
    logger: options.logger,
    hub,
    ledger,
    admission,
    auth,
    metrics: observability.metrics,
    telemetry: observability.telemetry,
    replicas,
    placement: new PlacementPlanner({ policies, replicas, waitMs: config.placement.affinity_wait_ms, logger: options.logger }),
    fastStarter,
    promptBudget,
    sessions,
    replicaFrames: new ReplicaFrameMetrics(observability.metrics, config.pools.map((pool) => pool.id)),
    poolStates,
    slo: observability.slo,
    internalToken: options.internalToken,
    eagerWorkflowStart: options.eagerWorkflowStart ?? false,
    supervision: options.supervision ?? (() => []),
    poolHasReadyReplica: async (poolId) => {
      const known = (): boolean | undefined => {
        const view = backlog.view(poolId);
        if (view === undefined) return undefined;
        return view.readyReplicas.length > 0 || replicas.replicas(poolId).some((replica) => replica.ready);
      };
      if (known() !== false) return known();
      // Rare (a pool with no replica): two reads, so the second starts after this request arrived.
      await backlog.refresh();
      await Promise.all([backlog.refresh(), replicas.refresh()]);
      return known();
    },
    get internalUrl() {
      return internalUrl;
    },
  });
  await app.listen({ host: listen.host, port: listen.port });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : listen.port;
  const url = httpUrl(listen.host, port);
  const internalServer = options.internalListen && !internalUrl ? await listenPrivately(app, options.internalListen.host) : undefined;
  if (internalServer) internalUrl = internalServer.url;
  if (!internalUrl) internalUrl = url;
  return {
    app,
    hub,
    admission,
    replicas,
    url,
    configReloader,
    close: async () => {
      hub.close();
      backlog.stop();
      replicas.stop();
      poolStates.stop();
      observability.stop();
      await internalServer?.close();
      await app.close();
      await fastStarter.close();
      await promptBudget.close();
      await Promise.all([...policies.values()].map((policy) => policy.close()));
    },
  };
}

/**
 * The same routes on a port of this process alone. `exclusive` keeps a cluster worker from sharing it
 * through the primary, as the public port is.
 */
async function listenPrivately(app: FastifyInstance, host: string): Promise<{ url: string; close(): Promise<void> }> {
  const server = createServer((request, response) => app.routing(request, response));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port: 0, exclusive: true }, () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: httpUrl(host, port),
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
