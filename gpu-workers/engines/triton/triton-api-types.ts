import { z } from 'zod';

/**
 * Tolerant schemas for Triton's KServe v2 answers and its generate extension (.specs/engines/triton.md):
 * only the fields the adapter reads, each nullish.
 */

/** GET /v2: `{"name":"triton","version":"2.51.0","extensions":[…]}`. */
export const ServerMetadataSchema = z.object({
  name: z.string().nullish(),
  version: z.string().nullish(),
});

/** A model config parameter: `{"string_value": "…"}`. */
const ParameterSchema = z.object({ string_value: z.string().nullish() });

/** GET /v2/models/<m>/config, the fields the adapter reads. */
export const ModelConfigSchema = z.object({
  parameters: z.record(z.string(), ParameterSchema).nullish(),
  model_transaction_policy: z.object({ decoupled: z.boolean().nullish() }).nullish(),
});
export type ModelConfig = z.infer<typeof ModelConfigSchema>;

/**
 * One generate_stream frame: every output tensor of a model response as a field (ours: `text_output` on each
 * token; `finish_reason`, `prompt_tokens`, `completion_tokens`, `decode_ms` on the last), or `{"error": "…"}`.
 */
export const GenerateFrameSchema = z.object({
  text_output: z.string().nullish(),
  finish_reason: z.string().nullish(),
  prompt_tokens: z.number().nullish(),
  completion_tokens: z.number().nullish(),
  decode_ms: z.number().nullish(),
  error: z.string().nullish(),
});
export type GenerateFrame = z.infer<typeof GenerateFrameSchema>;

/** Triton's error body outside a stream: `{"error": "…"}`. */
export const ErrorBodySchema = z.object({ error: z.string() });

/** POST /v2/models/<tokenizer>/generate on the tokenize model. */
export const TokenCountSchema = z.object({ prompt_tokens: z.number() });
