import type { Client } from '@temporalio/client';
import type { Logger } from 'pino';
import type { OrchConfig } from '../core/config';
import type { AdmissionController } from './admission/admission-controller';
import type { ConfigReloader } from './config-reloader';
import type { PoolLedger } from './admission/pool-ledger';
import type { Authenticator } from './auth/authenticator';
import type { JobTelemetry } from './observability/job-telemetry';
import type { ReplicaFrameMetrics } from './observability/replica-frame-metrics';
import type { OrchMetrics } from './observability/metrics';
import type { PlacementPlanner } from './placement/placement-planner';
import type { FastStarter } from './fast-start/fast-starter';
import type { PromptTokenBudget } from './admission/prompt-token-budget';
import type { SloTracker } from './observability/slo-tracker';
import type { PoolStateDirectory } from './pool-state-directory';
import type { ReplicaDirectory } from './replica-directory';
import type { SessionRegistry } from './sessions/session-registry';
import type { StreamHub } from './stream-hub';
import type { SupervisedProcessStatus } from '../core/supervised-process';

/** What the gateway's routes share. */
export interface GatewayContext {
  /** The live config: a hot reload swaps it (api/config-reloader.ts). */
  readonly config: OrchConfig;
  readonly configReloader: ConfigReloader;
  readonly client: Client;
  readonly logger: Logger;
  readonly hub: StreamHub;
  readonly ledger: PoolLedger;
  readonly admission: AdmissionController;
  /** API keys → tenant and scopes (ORCH-3035); the tenant is the client identity. */
  readonly auth: Authenticator;
  readonly metrics: OrchMetrics;
  /** Job lifecycle → ORCH-3027 log lines and the lint metrics. */
  readonly telemetry: JobTelemetry;
  /** Every replica's last published status (state, replica-set key, slot load), refreshed in the background. */
  readonly replicas: ReplicaDirectory;
  /** Session affinity and policy pins → a per-replica lane (placement ADR). */
  readonly placement: PlacementPlanner;
  /** Starts decoding on a free replica while the workflow is written, when nothing waits (ADR 2026-12-06). */
  readonly fastStarter: FastStarter;
  /** ORCH-3015: prompt + max_tokens ≤ ctx before enqueue, the prompt counted by a replica's tokenizer. */
  readonly promptBudget: Pick<PromptTokenBudget, 'check'>;
  /** Short-lived sessions (ORCH-3021): turns, TTL, affinity and KV state, per gateway. */
  readonly sessions: SessionRegistry;
  /** Metrics from replica frames: the lane hit rate (dispatched) and KV pressure (kv; ORCH-3022/3028). */
  readonly replicaFrames: ReplicaFrameMetrics;
  /** Every pool's desired state (drained, reloading, current model), refreshed in the background. */
  readonly poolStates: PoolStateDirectory;
  /** Per-pool SLO verdicts for the replica-set snapshots. */
  readonly slo: Pick<SloTracker, 'poolSnapshot'>;
  /** Bearer token pool workers and workflow workers present on /internal routes. */
  readonly internalToken: string;
  /** How workers reach this gateway's internal routes (the tasks' stream sink). */
  readonly internalUrl: string;
  /**
   * Ask Temporal to hand the first workflow task straight to a workflow worker in this process, skipping
   * a matching round trip. Only valid when the client shares that worker's NativeConnection.
   */
  readonly eagerWorkflowStart: boolean;
  /**
   * Whether the pool has a Ready replica (polling its queue, or a status record saying ready); undefined
   * until this gateway has read the queue once. A "no" is confirmed by reading Temporal afresh, so a
   * replica that became Ready since the last background read is not refused. ORCH-3018.
   */
  readonly poolHasReadyReplica: (poolId: string) => Promise<boolean | undefined>;
  /** The processes `npm start` supervises, for GET /health and the metrics; empty when nothing supervises this gateway. */
  readonly supervision: () => readonly SupervisedProcessStatus[];
}
