import { z } from 'zod';

/**
 * Tolerant schemas for llama-server responses: only the fields the adapter reads, each nullish, so
 * fields added, dropped or renamed between builds never fail a parse they do not matter to.
 */

/** llama-server's OAI-shaped error object: `{"code":400,"message":"…","type":"invalid_request_error"}`. */
export const EngineErrorSchema = z.object({
  code: z.number().nullish(),
  message: z.string().nullish(),
  type: z.string().nullish(),
});
export type EngineError = z.infer<typeof EngineErrorSchema>;

export const ErrorEnvelopeSchema = z.object({ error: EngineErrorSchema });

/** One /completion stream chunk: a partial (`stop:false`) or the final one (`stop:true`). */
export const CompletionChunkSchema = z.object({
  content: z.string().nullish(),
  tokens: z.array(z.number()).nullish(),
  stop: z.boolean().nullish(),
  id_slot: z.number().nullish(),
  tokens_predicted: z.number().nullish(),
  tokens_evaluated: z.number().nullish(),
  /** Newer builds: none | eos | limit | word. A string here, so an unknown value maps to 'none'. */
  stop_type: z.string().nullish(),
  /** Older builds report the stop reason as three booleans instead. */
  stopped_eos: z.boolean().nullish(),
  stopped_word: z.boolean().nullish(),
  stopped_limit: z.boolean().nullish(),
  /** Tokens the slot keeps in KV after the request. */
  tokens_cached: z.number().nullish(),
  timings: z.object({ predicted_ms: z.number().nullish(), cache_n: z.number().nullish() }).nullish(),
  /** Newer builds report a mid-stream failure as a `data: {"error":{…}}` chunk. */
  error: z.union([EngineErrorSchema, z.string()]).nullish(),
});
export type CompletionChunk = z.infer<typeof CompletionChunkSchema>;

export const PropsSchema = z.object({
  total_slots: z.number().nullish(),
  build_info: z.string().nullish(),
  model_path: z.string().nullish(),
  default_generation_settings: z.object({ n_ctx: z.number().nullish() }).nullish(),
  /** Some builds also report n_ctx at the top level. */
  n_ctx: z.number().nullish(),
});

export const SlotsSchema = z.array(
  z.object({
    id: z.number(),
    is_processing: z.boolean().nullish(),
    /** Older builds: 0 = idle, anything else = busy. */
    state: z.number().nullish(),
    n_ctx: z.number().nullish(),
    /** Tokens in the slot's KV: the running (or last) task's prompt plus what it generated. */
    n_prompt_tokens: z.number().nullish(),
  }),
);

/** POST /tokenize: the token ids (with `with_pieces` off, the default). */
export const TokenizeSchema = z.object({ tokens: z.array(z.number()) });

/** POST /apply-template: the chat template rendered for `messages`, with the generation prompt. */
export const AppliedTemplateSchema = z.object({ prompt: z.string() });
