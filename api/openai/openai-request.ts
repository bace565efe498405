import { z } from 'zod';
import type { ChatMessage, SamplingOverrides } from '../../core/generation-options';
import { ErrorCode, OrchError } from '../../core/errors';
import { MAX_PROMPT_BYTES } from '../../core/task-request';
import { PRIORITIES, type Priority } from '../../core/engines';

/**
 * The OpenAI request fields llama-orch serves (POST /v1/chat/completions and /v1/completions). Anything
 * else is refused with a 400 that names it, never ignored: a client asking for tools or n=3 must learn
 * it did not get them. Optional fields may be null, as several client libraries send them.
 */
const TextPartSchema = z.strictObject({ type: z.literal('text'), text: z.string() });
const MessageSchema = z.object({
  role: z.enum(['system', 'developer', 'user', 'assistant']),
  // A string, or text parts (images and audio are not served).
  content: z.union([z.string(), z.array(TextPartSchema)]),
  name: z.string().nullish(),
});

const common = {
  model: z.string().min(1).max(512),
  stream: z.boolean().nullish(),
  stream_options: z.strictObject({ include_usage: z.boolean().nullish() }).nullish(),
  max_tokens: z.int().min(1).nullish(),
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().gt(0).max(1).nullish(),
  seed: z.int().min(Number.MIN_SAFE_INTEGER).max(Number.MAX_SAFE_INTEGER).nullish(),
  stop: z.union([z.string().min(1), z.array(z.string().min(1)).max(4)]).nullish(),
  n: z.literal(1, { message: 'only n=1 is served' }).nullish(),
  user: z.string().max(256).nullish(),
  // Defaults some clients always send; any other value is a feature not served.
  frequency_penalty: z.literal(0, { message: 'frequency_penalty is not served (only 0)' }).nullish(),
  presence_penalty: z.literal(0, { message: 'presence_penalty is not served (only 0)' }).nullish(),
  logprobs: z.literal(false, { message: 'logprobs are not served' }).nullish(),
  // llama-orch's extension (an `extra_body` field in the OpenAI clients): the task's priority class.
  priority: z.enum(PRIORITIES).nullish(),
};

export const ChatCompletionRequestSchema = z.strictObject({
  ...common,
  messages: z.array(MessageSchema).min(1).max(1024),
  max_completion_tokens: z.int().min(1).nullish(),
});
export type ChatCompletionRequest = z.infer<typeof ChatCompletionRequestSchema>;

export const CompletionRequestSchema = z.strictObject({
  ...common,
  prompt: z.union([z.string(), z.array(z.string()).length(1, { message: 'one prompt per request (a list of one is fine)' })]),
  echo: z.literal(false, { message: 'echo is not served' }).nullish(),
  best_of: z.literal(1, { message: 'only best_of=1 is served' }).nullish(),
  suffix: z.null({ message: 'suffix is not served' }).optional(),
});
export type CompletionRequest = z.infer<typeof CompletionRequestSchema>;

/** What either request becomes: a prompt or messages, and the task's sampling and limits. */
export interface OpenAiGeneration {
  readonly model: string;
  readonly prompt: string;
  readonly chat: readonly ChatMessage[] | undefined;
  readonly maxTokens: number | undefined;
  readonly seed: number | undefined;
  readonly sampling: SamplingOverrides | undefined;
  readonly stream: boolean;
  readonly includeUsage: boolean;
  readonly priority: Priority | undefined;
}

/** Parses a body against a schema; the first problem becomes the 400's message, naming the field. */
export function parseOpenAiBody<T>(schema: z.ZodType<T>, body: unknown): T {
  const parsed = schema.safeParse(body);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const field = issue && issue.path.length > 0 ? issue.path.join('.') : undefined;
  const unsupported = issue?.code === 'unrecognized_keys' ? `unsupported parameter: ${issue.keys.join(', ')}` : undefined;
  throw new OrchError(ErrorCode.INVALID_PARAMS, unsupported ?? `${field ? `${field}: ` : ''}${issue?.message ?? 'invalid request'}`);
}

export function chatGeneration(request: ChatCompletionRequest): OpenAiGeneration {
  const chat = request.messages.map((message) => ({
    role: message.role,
    content: typeof message.content === 'string' ? message.content : message.content.map((part) => part.text).join(''),
  }));
  // Bounded like an OrchQueue prompt: the messages ride in the workflow history.
  if (Buffer.byteLength(JSON.stringify(chat), 'utf8') > MAX_PROMPT_BYTES) throw new OrchError(ErrorCode.INVALID_PARAMS, `messages: over ${MAX_PROMPT_BYTES} bytes`);
  return { ...generationOf(request), prompt: '', chat, maxTokens: request.max_completion_tokens ?? request.max_tokens ?? undefined };
}

export function completionGeneration(request: CompletionRequest): OpenAiGeneration {
  const prompt = typeof request.prompt === 'string' ? request.prompt : (request.prompt[0] ?? '');
  return { ...generationOf(request), prompt, chat: undefined, maxTokens: request.max_tokens ?? undefined };
}

function generationOf(request: ChatCompletionRequest | CompletionRequest): Omit<OpenAiGeneration, 'prompt' | 'chat' | 'maxTokens'> {
  const stop = request.stop == null ? undefined : typeof request.stop === 'string' ? [request.stop] : request.stop;
  const sampling: SamplingOverrides = {
    ...(request.temperature == null ? {} : { temperature: request.temperature }),
    ...(request.top_p == null ? {} : { top_p: request.top_p }),
    ...(stop === undefined || stop.length === 0 ? {} : { stop }),
  };
  return {
    model: request.model,
    seed: request.seed ?? undefined,
    sampling: Object.keys(sampling).length > 0 ? sampling : undefined,
    stream: request.stream === true,
    includeUsage: request.stream_options?.include_usage === true,
    priority: request.priority ?? undefined,
  };
}
