import { z } from 'zod';
import { mockTokenize } from '../mock-llamacpp/mock-vocabulary';

/**
 * TGI's request body and its validation, as the double applies them. Sources (huggingface/text-generation-inference
 * at db931fcf): `router/src/lib.rs` GenerateRequest / CompatGenerateRequest / GenerateParameters (serde: unknown
 * fields ignored, `Option` fields take null, `bool` and `Vec` fields do not), `router/src/validation.rs`
 * `Validation::validate` (the checks and their messages, in its order) and `router/src/server.rs` (axum's Json
 * extractor answers a body it cannot read in plain text: 400 for bad JSON, 422 for a wrong shape, 415 without the
 * JSON content type).
 */

const optionalNumber = z.number().nullish();
const optionalInt = z.int().nullish();
const optionalNonNegativeInt = z.int().min(0).nullish();

const ParametersSchema = z.object({
  best_of: optionalNonNegativeInt,
  temperature: optionalNumber,
  repetition_penalty: optionalNumber,
  frequency_penalty: optionalNumber,
  top_k: optionalInt,
  top_p: optionalNumber,
  typical_p: optionalNumber,
  do_sample: z.boolean().optional(),
  max_new_tokens: optionalNonNegativeInt,
  return_full_text: z.boolean().nullish(),
  stop: z.array(z.string()).optional(),
  truncate: optionalNonNegativeInt,
  watermark: z.boolean().optional(),
  details: z.boolean().optional(),
  decoder_input_details: z.boolean().optional(),
  seed: optionalNonNegativeInt,
  top_n_tokens: optionalNonNegativeInt,
  grammar: z.unknown().optional(),
  adapter_id: z.string().nullish(),
});

const GenerateRequestSchema = z.object({
  inputs: z.string(),
  parameters: ParametersSchema.optional(),
  /** Only the compat route (`POST /`) reads it. */
  stream: z.boolean().optional(),
});

/** TGI's `DEFAULT_GENERATION_LENGTH` (validation.rs): a request is generated and re-validated in chunks of this many tokens. */
export const DEFAULT_GENERATION_LENGTH = 1024;

export interface TgiLimits {
  readonly maxInputTokens: number;
  readonly maxTotalTokens: number;
  readonly maxStopSequences: number;
  readonly maxTopNTokens: number;
}

/**
 * The double's `--max-best-of`: 1, so it generates one sequence per request. TGI itself refuses best_of > 1 on
 * such a server, with the messages below (router/src/validation.rs `validate_best_of`), as the double does.
 */
export const TGI_DOUBLE_MAX_BEST_OF = 1;

/** TGI's `validate_best_of` for the non-streaming routes (router/src/infer/mod.rs `generate_best_of`); null when accepted. */
export function bestOfRefusal(bestOf: number, maxBestOf: number): string | null {
  if (maxBestOf === 1 && bestOf !== 1) return '`best_of` != 1 is not allowed for this endpoint';
  if (bestOf > maxBestOf) return `\`best_of\` must be > 0 and <= ${maxBestOf}. Given: ${bestOf}`;
  return null;
}

/** A request that passed validation: what the generation needs. */
export interface ValidGenerateRequest {
  readonly inputs: string;
  readonly inputLength: number;
  /** The whole request's budget (`max_total_new_tokens`); generated in chunks of `chunkTokens`. */
  readonly maxNewTokens: number;
  readonly chunkTokens: number;
  /** `do_sample`, or any warper set (validation.rs `sampling`). */
  readonly sampling: boolean;
  /** The seed used: the request's, else a random one (reported in details only when sampling). */
  readonly seed: number;
  readonly stop: readonly string[];
  readonly details: boolean;
  readonly returnFullText: boolean;
  readonly bestOf: number;
  readonly decoderInputDetails: boolean;
}

/** A refusal: `plain` is axum's text rejection (before TGI sees the request), `tgi` TGI's `ErrorResponse`. */
export type TgiRefusal =
  | { readonly kind: 'plain'; readonly status: number; readonly text: string }
  | { readonly kind: 'tgi'; readonly status: number; readonly error: string; readonly errorType: string };

export type ParsedBody = { ok: true; body: z.infer<typeof GenerateRequestSchema> } | { ok: false; refusal: TgiRefusal };

/** axum `Json<T>`: content type, then syntax, then shape. */
export function parseGenerateBody(contentType: string | undefined, raw: string): ParsedBody {
  if (contentType === undefined || !/^application\/(?:[\w.+-]+\+)?json\b/i.test(contentType)) {
    return { ok: false, refusal: { kind: 'plain', status: 415, text: 'Expected request with `Content-Type: application/json`' } };
  }
  let value: unknown;
  try {
    value = JSON.parse(raw) as unknown;
  } catch (error) {
    return { ok: false, refusal: { kind: 'plain', status: 400, text: `Failed to parse the request body as JSON: ${(error as Error).message}` } };
  }
  const parsed = GenerateRequestSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue === undefined || issue.path.length === 0 ? '' : `${issue.path.join('.')}: `;
    return {
      ok: false,
      refusal: { kind: 'plain', status: 422, text: `Failed to deserialize the JSON body into the target type: ${where}${issue?.message ?? 'invalid body'}` },
    };
  }
  return { ok: true, body: parsed.data };
}

export function validationError(message: string): TgiRefusal {
  return { kind: 'tgi', status: 422, error: `Input validation error: ${message}`, errorType: 'validation' };
}

/** The double's tokenizer: BOS plus one token per whitespace-separated word (mock-vocabulary.ts), as `add_special_tokens` does. */
export function tokenizeInputs(inputs: string): number[] {
  return mockTokenize(inputs, true);
}

/**
 * `Validation::validate`, in its order. `parameters` absent means TGI's `default_parameters()` (do_sample true,
 * details false); present, each missing field takes serde's default (do_sample false, details false).
 */
export function validateGenerateRequest(
  body: z.infer<typeof GenerateRequestSchema>,
  limits: TgiLimits,
  randomSeed: () => number,
): { ok: true; request: ValidGenerateRequest } | { ok: false; refusal: TgiRefusal } {
  const parameters = body.parameters;
  const bestOf = parameters?.best_of ?? 1;
  const sampling =
    (parameters === undefined ? true : (parameters.do_sample ?? false)) ||
    parameters?.temperature != null ||
    parameters?.top_k != null ||
    parameters?.top_p != null ||
    parameters?.typical_p != null;
  const fail = (message: string): { ok: false; refusal: TgiRefusal } => ({ ok: false, refusal: validationError(message) });
  if (bestOf > 1 && !sampling) return fail('you must use sampling when `best_of` is > 1');
  if ((parameters?.temperature ?? 1) <= 0) return fail('`temperature` must be strictly positive');
  if ((parameters?.repetition_penalty ?? 1) <= 0) return fail('`repetition_penalty` must be strictly positive');
  const frequencyPenalty = parameters?.frequency_penalty ?? 0;
  if (frequencyPenalty < -2 || frequencyPenalty > 2) return fail('`frequency_penalty` must be >= -2.0 and <= 2.0');
  const topP = parameters?.top_p;
  if (topP != null && (topP <= 0 || topP >= 1)) return fail('`top_p` must be > 0.0 and < 1.0');
  const typicalP = parameters?.typical_p;
  if (typicalP != null && (typicalP <= 0 || typicalP >= 1)) return fail('`typical_p` must be > 0.0 and < 1.0');
  const topK = parameters?.top_k;
  if (topK != null && topK <= 0) return fail('`top_k` must be strictly positive');
  if (parameters?.max_new_tokens === 0) return fail('`max_new_tokens` must be strictly positive');
  const stop = parameters?.stop ?? [];
  if (stop.length > limits.maxStopSequences) return fail(`\`stop\` supports up to ${limits.maxStopSequences} stop sequences. Given: ${stop.length}`);
  const requestedSeed = parameters?.seed;
  if (requestedSeed != null && bestOf > 1) return fail('`seed` must not be set when `best_of` > 1');
  const topNTokens = parameters?.top_n_tokens;
  if (topNTokens != null && topNTokens > limits.maxTopNTokens) return fail(`\`top_n_tokens\` must be >= 0 and <= ${limits.maxTopNTokens}. Given: ${topNTokens}`);
  if (body.inputs.length === 0) return fail('`inputs` cannot be empty');
  const truncate = parameters?.truncate;
  if (truncate != null && (truncate === 0 || truncate > limits.maxInputTokens)) {
    return fail(`\`truncate\` must be strictly positive and less than ${limits.maxInputTokens}. Given: ${truncate}`);
  }
  const encoded = tokenizeInputs(body.inputs).length;
  const inputLength = truncate != null ? Math.min(encoded, truncate) : encoded;
  const requestedMax = parameters?.max_new_tokens;
  const maxNewTokens = requestedMax ?? Math.max(0, limits.maxTotalTokens - inputLength);
  const chunkTokens = Math.min(maxNewTokens, DEFAULT_GENERATION_LENGTH);
  if (inputLength + chunkTokens > limits.maxTotalTokens) {
    return fail(
      `\`inputs\` tokens + \`max_new_tokens\` must be <= ${limits.maxTotalTokens}. Given: ${inputLength} \`inputs\` tokens and ${chunkTokens} \`max_new_tokens\``,
    );
  }
  if (inputLength > limits.maxInputTokens) return fail(`\`inputs\` must have less than ${limits.maxInputTokens} tokens. Given: ${inputLength}`);
  if (parameters?.grammar != null) return fail('grammar is not supported');
  return {
    ok: true,
    request: {
      inputs: body.inputs,
      inputLength,
      maxNewTokens,
      chunkTokens,
      sampling,
      seed: requestedSeed ?? randomSeed(),
      stop,
      details: parameters?.details ?? false,
      returnFullText: parameters?.return_full_text ?? false,
      bestOf,
      decoderInputDetails: parameters?.decoder_input_details ?? false,
    },
  };
}
