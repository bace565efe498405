import { z } from 'zod';

/** The OpenAI-compatible routes' error body: OpenAI's shape, the contract's code in `code`. */
export const OpenAiErrorSchema = z.strictObject({
  error: z.strictObject({ message: z.string(), type: z.string(), param: z.null(), code: z.string() }),
});

/** GET /v1/models; `pools` is llama-orch's addition. */
export const ModelListSchema = z.strictObject({
  object: z.literal('list'),
  data: z.array(z.strictObject({ id: z.string(), object: z.literal('model'), created: z.int(), owned_by: z.string(), pools: z.array(z.string()) })),
});
