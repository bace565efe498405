import { z } from 'zod';

/**
 * Tolerant schemas for the TGI answers the adapter reads (router/src/lib.rs of huggingface/text-generation-inference
 * at db931fcf): only the fields it uses, nullish, so a field added or dropped between versions fails nothing.
 */

/** `ErrorResponse`: a failed request's body, and an SSE event when the stream already started. */
export const TgiErrorResponseSchema = z.object({
  error: z.string(),
  error_type: z.string().nullish(),
});
export type TgiErrorResponse = z.infer<typeof TgiErrorResponseSchema>;

export const TgiTokenSchema = z.object({
  id: z.number().nullish(),
  text: z.string(),
  /** True for the tokenizer's special tokens (EOS): its text is not part of the generated text. */
  special: z.boolean().nullish(),
});

/** `StreamDetails`, on the last event when the request asked for `details`. */
export const TgiStreamDetailsSchema = z.object({
  /** `length` | `eos_token` | `stop_sequence`; a string, so an unknown value maps to 'none'. */
  finish_reason: z.string().nullish(),
  generated_tokens: z.number().nullish(),
  input_length: z.number().nullish(),
});

/** One `StreamResponse` of POST /generate_stream: `generated_text` is set on the last event only. */
export const TgiStreamResponseSchema = z.object({
  index: z.number().nullish(),
  token: TgiTokenSchema,
  generated_text: z.string().nullish(),
  details: TgiStreamDetailsSchema.nullish(),
});

/** GET /info. TGI before 2.0 named the input bound `max_input_length`; neither is used here. */
export const TgiInfoSchema = z.object({
  model_id: z.string().nullish(),
  model_sha: z.string().nullish(),
  max_concurrent_requests: z.number().nullish(),
  max_total_tokens: z.number().nullish(),
  version: z.string().nullish(),
  sha: z.string().nullish(),
});

/** POST /tokenize: `TokenizeResponse`, a list of `SimpleToken`. */
export const TgiTokenizeResponseSchema = z.array(z.object({ id: z.number() }));
