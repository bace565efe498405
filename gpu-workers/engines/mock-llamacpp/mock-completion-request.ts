import { z } from 'zod';
import { countPromptTokens } from './mock-vocabulary';

/**
 * The /completion fields the mock honours. Like llama-server it ignores fields it does not know;
 * sampler fields are echoed back (generation_settings, /slots) but do not change the output.
 */
const CompletionBodySchema = z.object({
  prompt: z.union([z.string(), z.array(z.int())]),
  n_predict: z.int().optional(),
  seed: z.int().optional(),
  stream: z.boolean().optional(),
  id_slot: z.int().optional(),
  cache_prompt: z.boolean().optional(),
  ignore_eos: z.boolean().optional(),
  return_tokens: z.boolean().optional(),
  temperature: z.number().optional(),
  top_k: z.number().optional(),
  top_p: z.number().optional(),
  min_p: z.number().optional(),
  repeat_penalty: z.number().optional(),
  samplers: z.array(z.string()).optional(),
});

export interface MockCompletionParams {
  readonly prompt: string | readonly number[];
  readonly promptTokens: number;
  /** As requested (-1 = unlimited), echoed in generation_settings. */
  readonly nPredict: number;
  /** Tokens the mock will produce at most: n_predict, bounded by the context left after the prompt. */
  readonly tokenLimit: number;
  readonly seed: number;
  readonly stream: boolean;
  readonly ignoreEos: boolean;
  readonly returnTokens: boolean;
  readonly slotId: number | undefined;
  /** Reuse the slot's cached prefix (llama.cpp `cache_prompt`; the mock's default is off, like the adapter's). */
  readonly cachePrompt: boolean;
  readonly samplerSettings: Readonly<Record<string, unknown>>;
}

export interface MockEngineError {
  readonly status: number;
  readonly body: { readonly error: Readonly<Record<string, unknown>> };
}

export interface CompletionLimits {
  readonly slotCount: number;
  readonly contextSize: number;
  readonly defaultNPredict: number;
}

function invalidRequest(message: string): MockEngineError {
  return { status: 400, body: { error: { code: 400, message, type: 'invalid_request_error' } } };
}

export function parseCompletionBody(
  body: unknown,
  limits: CompletionLimits,
): { ok: true; params: MockCompletionParams } | { ok: false; error: MockEngineError } {
  const parsed = CompletionBodySchema.safeParse(body);
  if (!parsed.success) return { ok: false, error: invalidRequest(`invalid completion request: ${parsed.error.message}`) };
  const request = parsed.data;
  const slotId = request.id_slot === undefined || request.id_slot < 0 ? undefined : request.id_slot;
  if (slotId !== undefined && slotId >= limits.slotCount) return { ok: false, error: invalidRequest(`invalid id_slot ${slotId}`) };
  const promptTokens = countPromptTokens(request.prompt);
  if (promptTokens >= limits.contextSize) {
    // llama-server's answer when the prompt does not fit (the adapter maps it to INVALID_PARAMS).
    return {
      ok: false,
      error: {
        status: 400,
        body: {
          error: {
            code: 400,
            message: 'the request exceeds the available context size, try increasing it',
            type: 'exceed_context_size_error',
            n_prompt_tokens: promptTokens,
            n_ctx: limits.contextSize,
          },
        },
      },
    };
  }
  const nPredict = request.n_predict ?? limits.defaultNPredict;
  const contextLeft = limits.contextSize - promptTokens;
  // A negative seed means "random" in llama.cpp; the mock draws one so such requests still differ.
  const seed = request.seed === undefined || request.seed < 0 ? Math.floor(Math.random() * 0xffffffff) : request.seed;
  return {
    ok: true,
    params: {
      prompt: request.prompt,
      promptTokens,
      nPredict,
      tokenLimit: nPredict < 0 ? contextLeft : Math.min(nPredict, contextLeft),
      seed,
      stream: request.stream ?? false,
      ignoreEos: request.ignore_eos ?? false,
      returnTokens: request.return_tokens ?? false,
      slotId,
      cachePrompt: request.cache_prompt ?? false,
      samplerSettings: {
        temperature: request.temperature ?? 0.8,
        top_k: request.top_k ?? 40,
        top_p: request.top_p ?? 0.95,
        min_p: request.min_p ?? 0.05,
        repeat_penalty: request.repeat_penalty ?? 1.0,
        samplers: request.samplers ?? ['penalties', 'dry', 'top_n_sigma', 'top_k', 'typ_p', 'top_p', 'min_p', 'xtc', 'temperature'],
      },
    },
  };
}
