import type { TaskWorkflowInput } from './task-workflow-contract';

/**
 * The ORCH-3027 identity fields a job's log lines carry wherever they are written (gateway, pool worker):
 * pino child bindings, so each line of the job has them without repeating them at each call.
 */
export interface ReplicaLogFacts {
  readonly replicaId: string;
  readonly engineVersion: string;
  /** null when neither the pool, the GGUF nor the model's name says (never guessed). */
  readonly quant?: string | null | undefined;
  /** The configured ratios, comma-joined, where the engine splits by them (ORCH-3012); else null. */
  readonly tensorSplit?: string | null | undefined;
}

export function jobLogBindings(input: Pick<TaskWorkflowInput, 'request' | 'poolId' | 'clientId'>, replica: ReplicaLogFacts) {
  return {
    job_id: input.request.task_id,
    session_id: input.request.session_id,
    client_id: input.clientId,
    engine: input.request.engine,
    pool_id: input.poolId,
    replica_id: replica.replicaId,
    model_id: input.request.model_ref,
    quant: replica.quant ?? null,
    ctx: input.request.ctx,
    tensor_split: replica.tensorSplit ?? null,
    engine_version: replica.engineVersion,
    sampler_profile_version: input.request.sampler_profile_version,
  };
}
