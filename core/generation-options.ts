import { z } from 'zod';

/**
 * What an OpenAI-compatible request adds to an ordinary task (api/openai/): chat messages the engine turns
 * into a prompt with the model's own template, and sampler values that override the task's sampler
 * profile. Part of the workflow input, so a retry on another replica generates from the same request.
 */
export const ChatMessageSchema = z.strictObject({
  role: z.enum(['system', 'developer', 'user', 'assistant']),
  content: z.string(),
});
export type ChatMessage = z.infer<typeof ChatMessageSchema>;

export const SamplingOverridesSchema = z.strictObject({
  temperature: z.number().min(0).max(2).optional(),
  top_p: z.number().gt(0).max(1).optional(),
  stop: z.array(z.string().min(1)).max(4).optional(),
});
export type SamplingOverrides = z.infer<typeof SamplingOverridesSchema>;
