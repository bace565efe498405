import type { Logger } from 'pino';
import { POOL_DEFAULTS, type PoolConfig } from '../../core/config';
import type { Priority } from '../../core/engines';
import { ErrorCode, ERROR_TRAITS, OrchError } from '../../core/errors';
import type { TaskRequest } from '../../core/task-request';
import { builtinPolicy, type PolicyHost } from '../../policy';
import { policyRequestFromTask, type AdmitSnapshot, type QueuedTask, type Replica } from '../../policy/sdk';
import type { PoolLedger, QueueEstimate } from './pool-ledger';
import type { RateLimiter } from './rate-limiter';
import type { TemporalBacklog } from './temporal-backlog';
import type { TenantTokenWindow } from './tenant-token-window';
import type { ReplicaStatus } from '../../core/replica-status';
import { slotsPerReplicaOf } from '../pool-selection';
import { engineLoadOf } from '../placement/placement-candidates';
import type { AdmissionGuards } from './admission-guards';

/** Policies see at most this many queued tasks (oldest first): enough to pick a victim, bounded per call. */
const MAX_SNAPSHOT_TASKS = 1024;

export interface AdmissionDependencies {
  readonly ledger: PoolLedger;
  readonly backlog: TemporalBacklog;
  readonly limiter: RateLimiter;
  readonly policies: ReadonlyMap<string, PolicyHost>;
  /** Engine slots serving each pool now (its Ready replicas' published slots, else the configured count). */
  readonly slotsOf: (poolId: string) => number;
  /** The replicas' last published status records (slot load), for the policy's snapshot; absent: pollers only. */
  readonly replicaRecords?: ((poolId: string) => readonly ReplicaStatus[]) | undefined;
  /** Tokens each tenant's tasks used over the last minute (api/admission/tenant-token-window.ts). */
  readonly tenantTokens?: Pick<TenantTokenWindow, 'lastMinute'> | undefined;
  readonly logger: Logger;
  /** SLO breaker and tenant quotas (issue 5), checked just before the task enters the ledger. */
  readonly guards?: Pick<AdmissionGuards, 'beforeAdmit'> | undefined;
}

export interface Admission {
  readonly estimate: QueueEstimate;
  /** A queued task the policy chose to evict to make room (drop-lru, shed-low-priority). */
  readonly victimTaskId?: string | undefined;
  readonly decidedBy: string;
}

/**
 * Admission before enqueue (ORCH-3004/3005/3006, OC-CORE-1001–1005): rate limits, the deadline, then the
 * pool's policy (a plugin or the built-in one) over a snapshot of the queue. The new task holds its place
 * in the ledger while the policy decides, so concurrent requests on this gateway see each other.
 */
export class AdmissionController {
  constructor(private readonly dependencies: AdmissionDependencies) {}

  async admit(pool: PoolConfig, request: TaskRequest, clientId: string): Promise<Admission> {
    const { ledger } = this.dependencies;
    const details = { engine: request.engine, poolId: pool.id };
    this.checkRateLimit(pool, request.priority, clientId, details);

    const depth = this.depth(pool.id);
    const estimate = ledger.estimate(pool.id, request.priority, depth, this.dependencies.slotsOf(pool.id));
    if (estimate.predictedStartMs > request.deadline_ms) {
      throw new OrchError(
        ErrorCode.DEADLINE_UNMET,
        `predicted start in ${estimate.predictedStartMs} ms is past deadline_ms ${request.deadline_ms}`,
        details,
      );
    }

    const policy = this.dependencies.policies.get(pool.id);
    if (!policy) throw new OrchError(ErrorCode.INTERNAL, `no policy for pool ${pool.id}`);
    const snapshot = this.snapshot(pool, request, clientId, depth, policy);
    this.dependencies.guards?.beforeAdmit(pool, request, clientId);
    ledger.admitted(pool.id, { taskId: request.task_id, priority: request.priority, tenant: clientId, maxTokens: request.max_tokens, admittedAt: performance.now() });
    const outcome = await policy.admit(snapshot);
    const decidedBy = outcome.decidedBy.kind === 'plugin' ? `plugin:${outcome.decidedBy.pluginId}` : outcome.decidedBy.kind;
    const { decision } = outcome;
    if (decision.kind === 'reject') {
      ledger.finished(pool.id, request.task_id);
      throw new OrchError(decision.code, decision.policyLabel ? `${ERROR_TRAITS[decision.code].message} (${decision.policyLabel})` : ERROR_TRAITS[decision.code].message, {
        ...details,
        retryAfterMs: decision.retryAfterMs,
        policyLabel: decision.policyLabel,
      });
    }
    if (decision.kind === 'shed' && !snapshot.queue.tasks.some((task) => task.taskId === decision.victimTaskId)) {
      ledger.finished(pool.id, request.task_id);
      this.dependencies.logger.error({ pool_id: pool.id, victim: decision.victimTaskId, decided_by: decidedBy }, 'policy shed a task that is not queued here');
      throw new OrchError(ErrorCode.ADMISSION_REJECT, 'queue full', { ...details, retryAfterMs: 1_000, policyLabel: pool.queue.full_policy ?? 'reject' });
    }
    return { estimate, victimTaskId: decision.kind === 'shed' ? decision.victimTaskId : undefined, decidedBy };
  }

  /** Depth per class: this gateway's own count, or Temporal's backlog when that is larger (other gateways). */
  depth(poolId: string): { interactive: number; batch: number } {
    const { ledger, backlog } = this.dependencies;
    const global = backlog.view(poolId);
    // Temporal's count, less this gateway's recent withdrawals it may still include; never below our own.
    const fromTemporal = (priority: Priority): number => Math.max(0, (global?.[priority] ?? 0) - ledger.ghostCount(poolId, priority));
    return {
      interactive: Math.max(ledger.queuedCount(poolId, 'interactive'), fromTemporal('interactive')),
      batch: Math.max(ledger.queuedCount(poolId, 'batch'), fromTemporal('batch')),
    };
  }

  private checkRateLimit(pool: PoolConfig, priority: Priority, clientId: string, details: { engine: string; poolId: string }): void {
    const rate = pool.admission.priorities?.find((entry) => entry.name === priority)?.rate_limit_rps;
    if (!rate) return;
    const waitMs = this.dependencies.limiter.take(`${pool.id}/${priority}/${clientId}`, rate);
    if (waitMs > 0) {
      throw new OrchError(ErrorCode.ADMISSION_REJECT, `rate limit of ${rate} requests/s for ${priority} exceeded`, {
        ...details,
        retryAfterMs: Math.max(waitMs, 1),
        policyLabel: 'rate-limit',
      });
    }
  }

  /**
   * The Ready replicas with their published slot load, KV use and in-flight tokens (issue 13: policies see
   * real load). Without records (another deployment, or none read yet) the queue's pollers stand in, with
   * the configured slots and no load known (0: the ABI has no "unknown", see .specs/policy-abi.md).
   */
  private replicasFor(pool: PoolConfig): Replica[] {
    const records = (this.dependencies.replicaRecords?.(pool.id) ?? []).filter((record) => record.ready);
    if (records.length > 0) {
      return records.map((record) => ({
        replicaId: record.replica_id,
        replicaSetKey: record.replica_set_key ?? pool.id,
        state: 'ready',
        slotsTotal: record.slots_total,
        slotsBusy: Math.min(record.slots_busy, record.slots_total),
        ...engineLoadOf(record),
      }));
    }
    const slotsPerReplica = slotsPerReplicaOf(pool);
    return (this.dependencies.backlog.view(pool.id)?.readyReplicas ?? []).map((identity) => ({
      replicaId: identity,
      replicaSetKey: pool.id,
      state: 'ready',
      slotsTotal: slotsPerReplica,
      slotsBusy: 0,
      kvUsedPermille: 0,
      inflightTokens: 0,
    }));
  }

  private snapshot(pool: PoolConfig, request: TaskRequest, clientId: string, depth: { interactive: number; batch: number }, policy: PolicyHost): AdmitSnapshot {
    const { ledger } = this.dependencies;
    const poolCapacity = pool.queue.capacity ?? POOL_DEFAULTS.queueCapacity;
    const classCapacity = pool.admission.priorities?.find((entry) => entry.name === request.priority)?.queue_capacity ?? poolCapacity;
    const ownDepth = request.priority === 'interactive' ? depth.interactive : depth.batch;
    const otherDepth = depth.interactive + depth.batch - ownDepth;
    // One capacity for the policy: the pool's bound, tightened by this class's own bound.
    const capacity = Math.min(poolCapacity, otherDepth + classCapacity);
    const classIsTheBound = ownDepth >= classCapacity;
    const fullPolicy = pool.queue.full_policy ?? 'reject';
    const taskLimit = tasksThePolicyReads(policy, depth.interactive + depth.batch < capacity, fullPolicy, request.priority);
    const now = performance.now();
    const tasks: QueuedTask[] = ledger
      .queuedTasks(pool.id, taskLimit, classIsTheBound ? request.priority : undefined)
      .map((entry) => ({ taskId: entry.taskId, tenant: entry.tenant, priority: entry.priority, ageMs: Math.round(now - entry.admittedAt), maxTokens: entry.maxTokens }));
    const replicas = this.replicasFor(pool);
    const tokensOf = (tenant: string): number => this.dependencies.tenantTokens?.lastMinute(tenant) ?? 0;
    const tenants = [...ledger.tenantUsage(pool.id)].map(([tenant, usage]) => ({ tenant, queued: usage.queued, running: usage.running, tokensLastMinute: tokensOf(tenant) }));
    return {
      request: policyRequestFromTask(request, clientId),
      queue: { capacity, depthInteractive: depth.interactive, depthBatch: depth.batch, fullPolicy, tasks },
      replicas,
      tenants,
      poolId: pool.id,
    };
  }
}

/**
 * How many queued tasks the snapshot lists. A plugin may read any of them, so it gets the bounded list.
 * The built-in policy reads none while the queue has room or when it rejects, and only the oldest for
 * drop-lru: a refusal at a full queue then costs no walk of the queue, however deep (issue 4's 429 bound).
 * Only shed-low-priority for an interactive request searches the list (for the newest batch task).
 */
function tasksThePolicyReads(policy: PolicyHost, hasRoom: boolean, fullPolicy: NonNullable<PoolConfig['queue']['full_policy']>, priority: Priority): number {
  if (policy.active.kind !== 'builtin' || policy.active.policyId !== builtinPolicy.id) return MAX_SNAPSHOT_TASKS;
  if (hasRoom) return 0;
  if (fullPolicy === 'drop-lru') return 1;
  if (fullPolicy === 'shed-low-priority' && priority === 'interactive') return MAX_SNAPSHOT_TASKS;
  return 0;
}
