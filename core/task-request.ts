import { z } from 'zod';
import { DETERMINISM_MODES } from './determinism';
import { ENGINES, PRIORITIES } from './engines';

/** Prompts ride in workflow history; this bound keeps one task far below Temporal's 2 MB blob limit. */
export const MAX_PROMPT_BYTES = 256 * 1024;

/** Seeds are int64 in the contract; JSON numbers past 2^53 lose precision, so we accept the safe range. */
const seedSchema = z.int().min(Number.MIN_SAFE_INTEGER).max(Number.MAX_SAFE_INTEGER);

/**
 * TaskRequest (spec §2.3). Unknown fields are rejected, so a misspelt optional field is an error
 * instead of a silent default (.specs/decisions/2026-11-24-strict-task-request.md).
 */
export const TaskRequestSchema = z
  .strictObject({
    task_id: z.uuid(),
    session_id: z.uuid(),
    workload: z.enum(['completion', 'embedding', 'rerank']),
    model_ref: z.string().min(1).max(512),
    engine: z.enum(ENGINES),
    ctx: z.int().min(1).max(2_147_483_647),
    priority: z.enum(PRIORITIES),
    seed: seedSchema.optional(),
    determinism: z.enum(DETERMINISM_MODES).optional(),
    sampler_profile_version: z.enum(['v1']).optional(),
    prompt: z
      .string()
      .refine((text) => Buffer.byteLength(text, 'utf8') <= MAX_PROMPT_BYTES, `prompt is over ${MAX_PROMPT_BYTES} bytes`)
      .optional(),
    inputs: z.array(z.string()).max(256).optional(),
    max_tokens: z.int().min(1).max(2_147_483_647),
    deadline_ms: z.int().min(1).max(Number.MAX_SAFE_INTEGER),
    expected_tokens: z.int().min(0).max(2_147_483_647).optional(),
    kv_hint: z.enum(['reuse', 'cold']).optional(),
  })
  .refine((request) => request.workload !== 'completion' || request.prompt !== undefined, {
    message: 'a completion needs a prompt',
    path: ['prompt'],
  });
export type TaskRequest = z.infer<typeof TaskRequestSchema>;

/** AdmissionResponse (spec §2.4). */
export interface AdmissionResponse {
  readonly task_id: string;
  readonly queue_position: number;
  readonly predicted_start_ms: number;
  readonly backoff_ms: number;
}
