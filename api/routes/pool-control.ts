import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { PoolConfig } from '../../core/config';
import { ErrorCode, OrchError } from '../../core/errors';
import { DRAIN_POOL_WORKFLOW_TYPE, effectiveReloadStrategy, reloadClaimMode, RELOAD_POOL_WORKFLOW_TYPE, reloadRefusal, RESUME_POOL_WORKFLOW_TYPE } from '../../core/pool-state';
import type { DrainPoolInput, PoolOperationInput, ReloadPoolInput } from '../../core/pool-state';
import type { GatewayContext } from '../gateway-context';
import { DrainRequestSchema, ReloadRequestSchema } from '../openapi/api-schemas';
import { operationReplicaIds, startPoolOperation } from '../pool-operation-starter';

const ParamsSchema = z.object({ id: z.string().min(1).max(128) });

export function findPool(context: GatewayContext, params: unknown): PoolConfig {
  const { id } = ParamsSchema.parse(params);
  const pool = context.config.pools.find((candidate) => candidate.id === id);
  if (!pool) throw new OrchError(ErrorCode.INVALID_PARAMS, `no pool with id ${id}`, { notFound: true });
  return pool;
}

/**
 * Pool operations (spec §2.9, design §5): each answers 202 with the operation's workflow id at once; the
 * work runs in a Temporal workflow that survives restarts. Resume is llama-orch's addition (control scope).
 */
export function registerPoolControlRoutes(app: FastifyInstance, context: GatewayContext): void {
  app.post('/v1/pools/:id/drain', async (request, reply) => {
    const pool = findPool(context, request.params);
    const { deadline_ms: deadlineMs } = DrainRequestSchema.parse(request.body);
    const started = await startPoolOperation<DrainPoolInput>(context, pool, {
      kind: 'drain',
      workflowType: DRAIN_POOL_WORKFLOW_TYPE,
      mode: 'draining',
      model: context.poolStates.modelOf(pool),
      input: (base) => ({ ...base, deadlineMs }),
    });
    return reply.code(202).send({ ...started, deadline_ms: deadlineMs });
  });

  app.post('/v1/pools/:id/reload', async (request, reply) => {
    const pool = findPool(context, request.params);
    const body = ReloadRequestSchema.parse(request.body);
    const modelRef = body.new_model_ref;
    const current = context.poolStates.modelOf(pool);
    const refusal = reloadRefusal(pool, context.config.models, modelRef, current);
    if (refusal !== null) throw new OrchError(ErrorCode.INVALID_PARAMS, refusal, { poolId: pool.id });
    const { control } = context.config;
    // ORCH-3033: a canary needs other replicas serving meanwhile; a pool of one, or one drained by an
    // operator, reloads all at once.
    const serving = context.poolStates.state(pool.id).mode === 'serving';
    const strategy = effectiveReloadStrategy(body.strategy ?? control.reload_strategy, serving ? operationReplicaIds(context, pool).length : 1);
    const canaryObserveMs = strategy === 'canary' ? (body.canary_observe_ms ?? control.reload_canary_observe_ms) : 0;
    const started = await startPoolOperation<ReloadPoolInput>(context, pool, {
      kind: 'reload',
      workflowType: RELOAD_POOL_WORKFLOW_TYPE,
      mode: reloadClaimMode(strategy),
      model: modelRef,
      reload: { strategy, phase: strategy === 'canary' ? 'canary' : 'rolling_out', canary_replica_id: null, canary_observe_ms: canaryObserveMs, steps: [] },
      input: (base, state) => ({
        ...base,
        modelRef,
        previousModelRef: state.model_ref ?? pool.model,
        drainDeadlineMs: control.reload_drain_deadline_ms,
        loadTimeoutMs: control.reload_load_timeout_ms,
        strategy,
        canaryObserveMs,
      }),
    });
    return reply.code(202).send({ ...started, new_model_ref: modelRef, strategy, ...(strategy === 'canary' ? { canary_observe_ms: canaryObserveMs } : {}) });
  });

  app.post('/v1/pools/:id/resume', async (request, reply) => {
    const pool = findPool(context, request.params);
    const started = await startPoolOperation<PoolOperationInput>(context, pool, {
      kind: 'resume',
      workflowType: RESUME_POOL_WORKFLOW_TYPE,
      // Admission stays closed until every replica polls again; the workflow sets `serving` at its end.
      mode: context.poolStates.state(pool.id).mode === 'serving' ? 'serving' : 'drained',
      model: context.poolStates.modelOf(pool),
      input: (base) => base,
    });
    return reply.code(202).send(started);
  });
}
