/**
 * ORCH-3007: replicas with identical {engine, model, quant, ctx, engine_version, sampler_profile_version}
 * form a replica set; anything else (another engine build included) never shares one.
 */
export interface ReplicaSetKeyFields {
  readonly engine: string;
  readonly model_ref: string;
  readonly quant: string | null;
  readonly ctx: number;
  readonly engine_version: string;
  readonly sampler_profile_version: string;
}

/** A readable, stable key: every field, in a fixed order, so two equal keys mean one replica set. */
export function replicaSetKey(fields: ReplicaSetKeyFields): string {
  return [
    fields.engine,
    fields.model_ref,
    fields.quant ?? 'quant-unknown',
    `ctx${fields.ctx}`,
    fields.engine_version,
    `sampler-${fields.sampler_profile_version}`,
  ].join('|');
}
