import type { FastifyBaseLogger } from 'fastify';
import { resolvePoolTimeouts } from '../core/config';
import { taskDeterminism } from '../core/determinism';
import { ErrorCode, OrchError } from '../core/errors';
import type { ChatMessage, SamplingOverrides } from '../core/generation-options';
import { taskWorkflowId } from '../core/ids';
import type { AdmissionResponse, TaskRequest } from '../core/task-request';
import { EVICTION_REASON, type TaskWorkflowInput } from '../core/task-workflow-contract';
import { defaultSeed } from './default-seed';
import type { GatewayContext } from './gateway-context';
import { assertPoolAdmits, assertPoolHasReadyReplica } from './pool-admission-gate';
import { selectPool } from './pool-selection';
import { cancelAtHolder } from './stream-relay';
import { describeRunningTask } from './stream-handover';
import { requestDigest, startTaskWorkflow } from './task-starter';

/** What an OpenAI-compatible request adds to a task (api/openai/): chat messages and sampler overrides. */
export interface TaskGeneration {
  readonly chat?: readonly ChatMessage[] | undefined;
  readonly sampling?: SamplingOverrides | undefined;
  /** max_tokens was not asked for (OpenAI's default): lowered to what the context leaves rather than refused. */
  readonly maxTokensDefaulted?: boolean | undefined;
}

/**
 * A task's life in the gateway, in one place, whatever surface it came through (OrchQueue v1 or the
 * OpenAI-compatible routes): admission, placement, fast start, the durable workflow start, cancel and
 * eviction. The routes only parse requests and shape answers.
 */
export async function submitTask(context: GatewayContext, submitted: TaskRequest, clientId: string, log: FastifyBaseLogger, generation?: TaskGeneration): Promise<AdmissionResponse> {
  let taskRequest = submitted;
  // The tenant is part of the digest: another tenant reusing a task_id gets 400, never this task. Hashed
  // only once the task gets past admission (or finds its stream), so a refusal costs no hash.
  const digestOf = (): string => requestDigest({ ...submitted, tenant: clientId });
  const pool = selectPool(context.config, taskRequest, (candidate) => context.poolStates.modelOf(candidate));

  const existing = context.hub.get(taskRequest.task_id);
  if (existing) {
    if (existing.requestDigest !== digestOf()) throw reusedTaskId(taskRequest.task_id, taskRequest.engine);
    return admissionResponse(taskRequest.task_id, existing.admission);
  }

  // ORCH-3045: the task's own determinism, else its pool's posture; strict on a best_effort pool is refused.
  const determinism = taskDeterminism(pool, taskRequest.determinism, taskRequest.engine);
  // ORCH-3021: a session past its turns or lifetime is refused before admission and enqueue.
  assertSessionMayTakeTurn(context, clientId, taskRequest.session_id, taskRequest.engine);
  assertPoolAdmits(context.poolStates, pool, taskRequest.engine);
  assertPoolHasReadyReplica(await context.poolHasReadyReplica(pool.id), pool, taskRequest.engine);
  // ORCH-3015: prompt tokens (the pool's tokenizer) + max_tokens ≤ ctx, before the ledger, the policy or Temporal.
  const budget = await context.promptBudget.check(pool, taskRequest, generation?.chat, generation?.maxTokensDefaulted);
  taskRequest = budget.request;
  // Holds the task's place in the ledger from here on; every exit below that does not admit releases it.
  const { estimate, victimTaskId, decidedBy } = await context.admission.admit(pool, taskRequest, clientId);
  const digest = digestOf();
  // Affinity is worth a bounded wait only where the KV can be reused: strict turns never reuse it (engines.md §1.6).
  const affinity = determinism === 'strict' ? undefined : context.sessions.affinity(clientId, taskRequest.session_id);
  const placement = await context.placement.plan(pool, taskRequest, clientId, affinity);
  const planned: TaskWorkflowInput = {
    version: 1,
    request: {
      ...taskRequest,
      seed: taskRequest.seed ?? defaultSeed(taskRequest.task_id),
      sampler_profile_version: taskRequest.sampler_profile_version ?? pool.sampler_profile_version ?? 'v1',
      determinism,
    },
    poolId: pool.id,
    clientId,
    admittedAtMs: Date.now(),
    timeouts: resolvePoolTimeouts(pool),
    streamSinkUrl: context.internalUrl,
    ...(placement ? { placement } : {}),
    ...(generation?.chat ? { chat: generation.chat } : {}),
    ...(generation?.sampling ? { sampling: generation.sampling } : {}),
  };
  // The stream exists before any replica may push to it (a fast start decodes from the next line on).
  context.hub.open(taskRequest.task_id, taskRequest.engine, { type: 'started', ...estimate }, { requestDigest: digest, admission: estimate, poolId: pool.id, tenant: clientId });
  context.telemetry.admitted({ taskId: taskRequest.task_id, sessionId: taskRequest.session_id, clientId, pool, engine: taskRequest.engine, priority: taskRequest.priority, modelId: taskRequest.model_ref, ctx: taskRequest.ctx, samplerProfileVersion: planned.request.sampler_profile_version, prompt: taskRequest.prompt, promptTokens: budget.promptTokens, predictedStartMs: estimate.predictedStartMs });
  const fastStarted = await context.fastStarter.start(planned);
  if (fastStarted) context.ledger.dispatched(pool.id, taskRequest.task_id);
  const input = fastStarted ?? planned;

  let outcome;
  try {
    // Durable before the 202, fast start or not (ADR 2026-12-06).
    outcome = await startTaskWorkflow(context.client, input, { requestDigest: digest, ...estimate, streamSinkUrl: context.internalUrl }, context.eagerWorkflowStart);
  } catch (error) {
    if (fastStarted) await context.fastStarter.withdraw(taskRequest.task_id);
    context.hub.discard(taskRequest.task_id);
    context.telemetry.discard(taskRequest.task_id);
    context.ledger.finished(pool.id, taskRequest.task_id);
    log.error({ err: error, job_id: taskRequest.task_id }, 'could not start the task workflow');
    throw new OrchError(ErrorCode.POOL_UNAVAILABLE, 'the orchestrator cannot reach Temporal; retry later', {
      engine: taskRequest.engine,
      poolId: pool.id,
      retryAfterMs: 1_000,
    });
  }
  if (outcome.kind === 'duplicate') {
    // Admitted before, by another gateway or before a restart: this fresh stream would never be fed.
    if (fastStarted) await context.fastStarter.withdraw(taskRequest.task_id);
    context.hub.discard(taskRequest.task_id);
    context.telemetry.discard(taskRequest.task_id);
    context.ledger.finished(pool.id, taskRequest.task_id);
    if (outcome.memo && outcome.memo.requestDigest !== digest) throw reusedTaskId(taskRequest.task_id, taskRequest.engine);
    return admissionResponse(taskRequest.task_id, outcome.memo ?? { queuePosition: 0, predictedStartMs: 0 });
  }
  context.sessions.recordTurn(clientId, taskRequest.session_id, taskRequest.task_id);
  if (victimTaskId) await evictQueuedTask(context, pool.id, taskRequest.engine, victimTaskId, log);
  context.telemetry.enqueued(taskRequest.task_id);
  log.info(
    {
      job_id: taskRequest.task_id,
      session_id: taskRequest.session_id,
      client_id: clientId,
      pool_id: pool.id,
      engine: taskRequest.engine,
      priority: taskRequest.priority,
      queue_position: estimate.queuePosition,
      predicted_start_ms: estimate.predictedStartMs,
      decided_by: decidedBy,
      ...(input.placement ? { placed_on: input.placement.replicaId, placement_reason: input.placement.reason } : {}),
      ...(victimTaskId ? { evicted_job_id: victimTaskId } : {}),
    },
    'task admitted',
  );
  return admissionResponse(taskRequest.task_id, estimate);
}

/** Cancels a task this tenant owns (checked by the caller): stops its run at once and records the cancel durably. */
export async function cancelTask(context: GatewayContext, taskId: string, log: FastifyBaseLogger, reason?: string): Promise<void> {
  const live = context.hub.get(taskId);
  // Local first: once this returns, this gateway emits nothing more for the task (ORCH-3026); and a
  // stream held by another gateway is cancelled there first, so nothing reaches its readers either.
  live?.cancel();
  // A run this gateway fast-started stops at once, even between tokens (a long prompt being processed).
  await context.fastStarter.withdraw(taskId);
  if (!live) {
    const holder = (await describeRunningTask(context, taskId))?.holder;
    if (holder !== undefined) await cancelAtHolder(context, holder, taskId, log);
  }
  const handle = context.client.workflow.getHandle(taskWorkflowId(taskId));
  try {
    await handle.executeUpdate('cancelTask', { args: [{ reason: 'client' }] });
  } catch (error) {
    const name = (error as { name?: unknown }).name;
    // A task that just ended (a cancel that stopped its run lets it finish within milliseconds) is cancelled enough.
    if (isAlreadyClosed(error)) {
      // nothing more to record
    } else if (name === 'WorkflowUpdateRPCTimeoutOrCancelledError') {
      // No workflow worker took the update within the RPC's deadline (a host starved of CPU by its engine). A
      // cancellation request is recorded by the server alone, and the workflow ends the task cancelled when it
      // next runs, as after the Web UI's Cancel button: the cancel is durable either way, so the client gets 204.
      log.warn({ err: error, job_id: taskId }, 'cancel update not taken in time; recorded as a workflow cancellation request');
      await requestWorkflowCancellation(handle, taskId, log);
    } else if (name === 'WorkflowNotFoundError') {
      // Temporal answers an update to a workflow that closed meanwhile as "not found": tell the two apart.
      if (!live && !(await workflowExists(context, taskId))) throw unknownTask(taskId);
    } else {
      log.error({ err: error, job_id: taskId }, 'cancel not recorded by the workflow');
      throw new OrchError(ErrorCode.INTERNAL, 'cancel could not be recorded; retry');
    }
  }
  if (live) context.ledger.withdrawn(live.poolId, taskId);
  context.sessions.taskEnded(taskId, false);
  context.telemetry.cancelled(taskId, 'client');
  log.info({ job_id: taskId, ...(reason ? { reason } : {}) }, 'task cancelled');
}


async function requestWorkflowCancellation(handle: { cancel(): Promise<unknown> }, taskId: string, log: FastifyBaseLogger): Promise<void> {
  try {
    await handle.cancel();
  } catch (error) {
    if (isAlreadyClosed(error)) return;
    log.error({ err: error, job_id: taskId }, 'cancel not recorded by the workflow');
    throw new OrchError(ErrorCode.INTERNAL, 'cancel could not be recorded; retry');
  }
}

/**
 * Drop-lru / shed-low-priority: the policy chose a queued task to make room. Its client gets an `error`
 * QUEUE_FULL_DROP_LRU event at once, and its workflow ends with that code without ever dispatching.
 */
async function evictQueuedTask(context: GatewayContext, poolId: string, engine: string, victimTaskId: string, log: FastifyBaseLogger): Promise<void> {
  context.ledger.withdrawn(poolId, victimTaskId);
  context.telemetry.cancelled(victimTaskId, 'drop-lru');
  context.hub.get(victimTaskId)?.finish({
    type: 'error',
    code: ErrorCode.QUEUE_FULL_DROP_LRU,
    message: 'evicted from a full queue to admit a newer task',
    engine,
  });
  try {
    await context.client.workflow.getHandle(taskWorkflowId(victimTaskId)).executeUpdate('cancelTask', { args: [{ reason: EVICTION_REASON }] });
  } catch (error) {
    if (!isAlreadyClosed(error)) log.error({ err: error, job_id: victimTaskId }, 'eviction not recorded by the workflow');
  }
  log.info({ job_id: victimTaskId, pool_id: poolId }, 'task evicted from a full queue');
}

function assertSessionMayTakeTurn(context: GatewayContext, tenant: string, sessionId: string, engine: string): void {
  const refusal = context.sessions.refusal(tenant, sessionId);
  if (!refusal) return;
  const why =
    refusal.kind === 'turns'
      ? `session ${sessionId} has had its ${refusal.maxTurns} turns`
      : `session ${sessionId} expired (sessions live ${refusal.ttlMs} ms from their first turn)`;
  throw new OrchError(ErrorCode.INVALID_PARAMS, `${why}; start a new session with a new session_id`, { engine });
}

async function workflowExists(context: GatewayContext, taskId: string): Promise<boolean> {
  try {
    await context.client.workflow.getHandle(taskWorkflowId(taskId)).describe();
    return true;
  } catch {
    return false;
  }
}

function isAlreadyClosed(error: unknown): boolean {
  const messageOf = (value: unknown): string => (value instanceof Error ? value.message : '');
  const text = `${messageOf(error)} ${messageOf((error as { cause?: unknown }).cause)}`;
  return /already completed|workflow execution already completed|not running/i.test(text);
}


export function unknownTask(taskId: string): OrchError {
  return new OrchError(ErrorCode.INVALID_PARAMS, `no task with id ${taskId}`, { notFound: true });
}

function admissionResponse(taskId: string, estimate: { queuePosition: number; predictedStartMs: number }): AdmissionResponse {
  return { task_id: taskId, queue_position: estimate.queuePosition, predicted_start_ms: estimate.predictedStartMs, backoff_ms: 0 };
}

function reusedTaskId(taskId: string, engine: string): OrchError {
  return new OrchError(ErrorCode.INVALID_PARAMS, `task_id ${taskId} was already used for a different request`, { engine });
}
