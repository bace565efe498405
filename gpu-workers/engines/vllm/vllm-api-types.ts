import { z } from 'zod';

/**
 * The parts of vLLM's OpenAI-compatible server the adapter reads (vLLM 0.32, `.specs/engines/vllm.md`).
 * Tolerant on purpose: only the fields we use, each nullish, unknown fields kept out of the way.
 */

/** `GET /version` → `{"version":"0.32.0"}`. */
export const VersionSchema = z.looseObject({ version: z.string() });

/** `GET /v1/models`: one entry per served model name; `max_model_len` is the context in tokens. */
export const ModelsSchema = z.looseObject({
  data: z.array(z.looseObject({ id: z.string(), root: z.string().nullish(), max_model_len: z.int().nullish() })),
});

/** `POST /tokenize` (a prompt, or chat messages rendered with the model's template). */
export const TokenizeSchema = z.looseObject({ count: z.int(), tokens: z.array(z.int()), max_model_len: z.int().nullish() });

/** vLLM's error body: `{"error":{message,type,param,code}}` (0.32), or older servers' flat `{object:"error",…}`. */
export const ErrorDetailSchema = z.looseObject({
  message: z.string().nullish(),
  type: z.string().nullish(),
  code: z.union([z.int(), z.string()]).nullish(),
});
export type VllmErrorDetail = z.infer<typeof ErrorDetailSchema>;
export const ErrorBodySchema = z.union([z.looseObject({ error: ErrorDetailSchema }), ErrorDetailSchema.extend({ object: z.literal('error') })]);

/**
 * One `data:` chunk of a streamed `/v1/completions`: a token's text and, with `return_token_ids`, its ids
 * (`prompt_token_ids` on the first chunk only); `finish_reason` on the last token's chunk; a final
 * `choices: []` chunk with `usage` when `stream_options.include_usage`. A failure mid-stream is `{"error":{…}}`.
 */
export const CompletionChunkSchema = z.looseObject({
  choices: z
    .array(
      z.looseObject({
        text: z.string().nullish(),
        token_ids: z.array(z.int()).nullish(),
        prompt_token_ids: z.array(z.int()).nullish(),
        /** With `logprobs: 0`: each token's own text (`tokens`), which splits a chunk that carries several tokens. */
        logprobs: z.looseObject({ tokens: z.array(z.string()).nullish() }).nullish(),
        finish_reason: z.string().nullish(),
        /** The stop string (a string) or stop token id (a number) that ended the output; null for EOS. */
        stop_reason: z.union([z.string(), z.int()]).nullish(),
      }),
    )
    .nullish(),
  usage: z.looseObject({ prompt_tokens: z.int(), completion_tokens: z.int() }).nullish(),
  error: ErrorDetailSchema.nullish(),
});
export type CompletionChunk = z.infer<typeof CompletionChunkSchema>;
