import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { temporal } from '@temporalio/proto';
import type { Client } from '@temporalio/client';
import type { Logger } from 'pino';
import { POOL_DEFAULTS } from '../../core/config';
import type { PoolConfig } from '../../core/config';
import { ErrorCode } from '../../core/errors';
import { replicaSetKey } from '../../core/replica-set';
import { parseReplicaIdentity } from '../../core/ids';
import { REPLICA_STATUS_QUERY, replicaStatusWorkflowId } from '../../core/replica-status';
import type { ReplicaStatus } from '../../core/replica-status';
import { poolTaskQueue } from '../../core/task-queues';
import { describeQuant } from '../models/model-quant';
import type { LaunchedEngine } from './engine-launcher';
import { ReplicaFailure } from './replica-failure';

const STATUS_QUERY_TIMEOUT_MS = 2_000;

/** The set-key digest a replica's Temporal identity carries: short, but distinct for the few sets of a pool. */
export function replicaSetDigest(replicaSetKey: string): string {
  return createHash('sha256').update(replicaSetKey).digest('hex').slice(0, 12);
}

export interface PoolQueueMember {
  readonly replicaId: string;
  readonly engineVersion: string;
  /** Undefined for a poller of an older release (no set digest in its identity): compared by engine_version. */
  readonly replicaSet: string | undefined;
}

/**
 * What a replica does about its pool's queue (ORCH-3046 / OC-CORE-1031: replicas of different sets never
 * share one queue). `poll`: it serves the pool queue. `standby`: another set serves it; this replica is
 * Ready on its own lane only (placed tasks) and takes the pool queue over once that set is gone. A refusal
 * (`require_same_engine_version` with another engine_version on the queue, or a set that outranks this
 * one after both joined at once) is a ReplicaFailure: the replica goes Unready and retries with backoff.
 */
export type MembershipVerdict = { readonly kind: 'poll' } | { readonly kind: 'standby'; readonly servedBy: string } | { readonly kind: 'refuse'; readonly failure: ReplicaFailure };

export interface MembershipInput {
  readonly self: PoolQueueMember & { readonly replicaSet: string; readonly replicaSetKey: string };
  /** Who polls the pool queue now (Temporal lists a poller up to about a minute after its last poll). */
  readonly pollers: readonly PoolQueueMember[];
  readonly requireSameEngineVersion: boolean;
  /** Whether this replica polls the pool queue already (a re-check while Ready). */
  readonly polling: boolean;
}

function sameSet(self: MembershipInput['self'], other: PoolQueueMember): boolean {
  return other.replicaSet === undefined ? other.engineVersion === self.engineVersion : other.replicaSet === self.replicaSet;
}

export function decideMembership(input: MembershipInput): MembershipVerdict {
  const { self } = input;
  const others = input.pollers.filter((poller) => poller.replicaId !== self.replicaId);
  const foreign = others.filter((poller) => !sameSet(self, poller));
  if (foreign.length === 0) return { kind: 'poll' };
  const describe = (members: readonly PoolQueueMember[]): string => members.map((member) => `${member.replicaId} (engine_version ${member.engineVersion})`).join(', ');
  const otherVersions = foreign.filter((poller) => poller.engineVersion !== self.engineVersion);
  if (input.requireSameEngineVersion && otherVersions.length > 0) {
    return {
      kind: 'refuse',
      failure: new ReplicaFailure(
        ErrorCode.POOL_UNAVAILABLE,
        'replica_set_mismatch',
        `require_same_engine_version: the pool's queue is served by ${describe(otherVersions)}; this replica runs engine_version ${self.engineVersion} and does not serve beside them (ORCH-3046)`,
      ),
    };
  }
  if (!input.polling) return { kind: 'standby', servedBy: describe(foreign) };
  // Both sets joined at once: the larger keeps the queue (ties: the smaller digest), the same rule on every replica.
  const counts = new Map<string, number>();
  for (const poller of [self, ...others]) {
    const key = sameSet(self, poller) ? self.replicaSet : (poller.replicaSet ?? `version:${poller.engineVersion}`);
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  const mine = counts.get(self.replicaSet) ?? 1;
  const outranked = [...counts].some(([key, count]) => key !== self.replicaSet && (count > mine || (count === mine && key < self.replicaSet)));
  if (!outranked) return { kind: 'poll' };
  return {
    kind: 'refuse',
    failure: new ReplicaFailure(
      ErrorCode.POOL_UNAVAILABLE,
      'replica_set_mismatch',
      `another replica set serves the pool's queue (${describe(foreign)}); this replica (set ${self.replicaSetKey}) leaves it and comes back on its own lane (ORCH-3046)`,
    ),
  };
}

/**
 * The pool queue's pollers as their identities say (lanes and unknown workers left out), less those whose
 * status record says they no longer serve that set: Temporal lists a poller for about a minute after its last
 * poll, so a replica drained for a reload still shows its old set there.
 */
export async function readPoolQueueMembers(client: Client, poolId: string, mayBeStale: (member: PoolQueueMember) => boolean = () => true): Promise<PoolQueueMember[]> {
  const description = await client.workflowService.describeTaskQueue({
    namespace: client.options.namespace,
    taskQueue: { name: poolTaskQueue(poolId), kind: temporal.api.enums.v1.TaskQueueKind.TASK_QUEUE_KIND_NORMAL },
    taskQueueType: temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
  });
  const listed = (description.pollers ?? []).flatMap((poller) => {
    const identity = parseReplicaIdentity(poller.identity ?? '');
    if (identity === undefined || identity.poolId !== poolId) return [];
    return [{ replicaId: identity.replicaId, engineVersion: identity.engineVersion, replicaSet: identity.replicaSet }];
  });
  const current = await Promise.all(
    listed.map(async (member) => {
      if (!mayBeStale(member)) return true;
      const status = await readStatus(client, poolId, member.replicaId);
      if (status === undefined) return true;
      return status.state === 'ready' && (member.replicaSet === undefined || status.replica_set_key === null || replicaSetDigest(status.replica_set_key) === member.replicaSet);
    }),
  );
  return listed.filter((_member, index) => current[index] === true);
}

async function readStatus(client: Client, poolId: string, replicaId: string): Promise<ReplicaStatus | undefined> {
  try {
    const status = await client.withDeadline(Date.now() + STATUS_QUERY_TIMEOUT_MS, () =>
      client.workflow.getHandle(replicaStatusWorkflowId(poolId, replicaId)).query<ReplicaStatus | null>(REPLICA_STATUS_QUERY),
    );
    return status ?? undefined;
  } catch {
    return undefined;
  }
}

/** The replica's set key (ORCH-3007) for an engine that is up, as its status record computes it. */
export function replicaSetKeyOf(pool: PoolConfig, engine: Pick<LaunchedEngine, 'modelRef' | 'properties'>): string {
  return replicaSetKey({
    engine: pool.engine,
    model_ref: engine.modelRef,
    quant: describeQuant(pool.quant, engine.properties.modelPath),
    ctx: pool.ctx ?? POOL_DEFAULTS.ctx,
    engine_version: engine.properties.engineVersion,
    sampler_profile_version: pool.sampler_profile_version ?? 'v1',
  });
}

/** How often a Ready replica looks at the pool queue's pollers again: a standby's takeover, a race at start. */
const RECHECK_MS = 5_000;

/**
 * The supervisor's gate to the pool queue (ORCH-3046 / OC-CORE-1031), one per replica. `admit` runs before the
 * replica goes Ready; `watch` while it is Ready, until it resolves with a change to make or the signal aborts.
 * A pool queue that cannot be read (Temporal away) counts as nobody else's: the queue is served as before.
 */
export class PoolQueueGate {
  constructor(
    private readonly options: {
      readonly client: Client;
      readonly pool: PoolConfig;
      readonly replicaId: string;
      readonly requireSameEngineVersion: boolean;
      readonly logger: Logger;
      readonly recheckMs?: number | undefined;
    },
  ) {}

  async decide(engine: Pick<LaunchedEngine, 'modelRef' | 'properties'>, polling: boolean): Promise<MembershipVerdict> {
    const { pool, replicaId, logger } = this.options;
    const replicaSetKey = replicaSetKeyOf(pool, engine);
    const self = { replicaId, engineVersion: engine.properties.engineVersion, replicaSet: replicaSetDigest(replicaSetKey), replicaSetKey };
    let pollers: PoolQueueMember[];
    try {
      // Only another set's pollers are worth a status read (one query each): the usual pool has none.
      pollers = await readPoolQueueMembers(this.options.client, pool.id, (member) => member.replicaId !== replicaId && !sameSet(self, member));
    } catch (error) {
      logger.warn({ err: error }, 'pool queue pollers unreadable; serving the pool queue as if no other replica set did');
      return { kind: 'poll' };
    }
    return decideMembership({
      self,
      pollers,
      requireSameEngineVersion: this.options.requireSameEngineVersion,
      polling,
    });
  }

  /** Resolves with the first verdict that changes what the replica does (a standby may poll, a poller must leave). */
  async watch(engine: Pick<LaunchedEngine, 'modelRef' | 'properties'>, polling: boolean, signal: AbortSignal): Promise<MembershipVerdict | undefined> {
    while (!signal.aborted) {
      try {
        await sleep(this.options.recheckMs ?? RECHECK_MS, undefined, { signal });
      } catch {
        return undefined;
      }
      const verdict = await this.decide(engine, polling);
      if (signal.aborted) return undefined;
      if (polling ? verdict.kind === 'refuse' : verdict.kind === 'poll') return verdict;
    }
    return undefined;
  }
}
