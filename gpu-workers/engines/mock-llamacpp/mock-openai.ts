import { randomBytes } from 'node:crypto';
import { parseCompletionBody } from './mock-completion-request';
import type { CompletionLimits, MockCompletionParams, MockEngineError } from './mock-completion-request';
import type { CompletionWire, NativeFinalResult } from './mock-generation';
import { MOCK_VOCAB_SIZE, pieceJson } from './mock-vocabulary';

/**
 * llama-server's OpenAI-compatible routes (engines.md §1.4), shaped as llama.cpp's tools/server
 * `server-task.cpp` writes them (`to_json_oaicompat`, `to_json_oaicompat_chat`, `…_chat_stream`):
 * - POST /v1/completions: `text_completion` objects; streamed, one chunk per token, then a final chunk
 *   with finish_reason, usage and timings, then `data: [DONE]`.
 * - POST /v1/chat/completions: `chat.completion`, or streamed `chat.completion.chunk`s: the first token
 *   comes after a `{"role":"assistant","content":null}` delta, the end is an empty delta with
 *   finish_reason, then (with `stream_options.include_usage`) a chunk with empty `choices` and usage;
 *   timings ride on the last chunk, then `data: [DONE]`.
 * - GET /v1/models: one model, in both the OpenAI (`data`) and Ollama (`models`) conventions.
 * The generation behind them is the native one: the same seed and prompt give the same tokens as
 * /completion. Chat messages become a prompt through MOCK_CHAT_TEMPLATE (ChatML), so a chat request
 * yields the tokens that /completion gives for `applyMockChatTemplate(messages)`.
 */

/** llama-server ignores `null` fields (json_value falls back to the default); OpenAI clients send some. */
function withoutNulls(body: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const result: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(body)) if (value !== null) result[key] = value;
  return result;
}

function invalidRequest(message: string): MockEngineError {
  return { status: 400, body: { error: { code: 400, message, type: 'invalid_request_error' } } };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export interface OpenAiRequest {
  readonly params: MockCompletionParams;
  /** `stream_options.include_usage`: chat streams then end with a usage chunk. */
  readonly includeUsage: boolean;
}

type ParseResult = { ok: true; request: OpenAiRequest } | { ok: false; error: MockEngineError };

/**
 * Maps an OpenAI-style body onto the native fields, as llama-server's params_from_json_cmpl reads
 * them from the same JSON: `n_predict`, else `max_completion_tokens`, else `max_tokens`. Native
 * fields (id_slot, cache_prompt, ignore_eos, …) are honoured on these routes too.
 */
function parseWith(body: Record<string, unknown>, prompt: unknown, limits: CompletionLimits): ParseResult {
  const nPredict = body['n_predict'] ?? body['max_completion_tokens'] ?? body['max_tokens'];
  const parsed = parseCompletionBody({ ...body, prompt, n_predict: nPredict }, limits);
  if (!parsed.ok) return parsed;
  const streamOptions = body['stream_options'];
  const includeUsage = isRecord(streamOptions) && streamOptions['include_usage'] === true;
  return { ok: true, request: { params: parsed.params, includeUsage } };
}

export function parseOpenAiCompletionBody(raw: unknown, limits: CompletionLimits): ParseResult {
  if (!isRecord(raw)) return { ok: false, error: invalidRequest('invalid completion request: expected a JSON object') };
  const body = withoutNulls(raw);
  let prompt = body['prompt'];
  // One prompt per request: ["text"] is that text; several prompts (several choices) are not mocked.
  if (Array.isArray(prompt) && prompt.length === 1 && typeof prompt[0] === 'string') prompt = prompt[0];
  else if (Array.isArray(prompt) && prompt.some((item) => typeof item !== 'number')) {
    return { ok: false, error: invalidRequest('the mock engine serves one prompt per request (a string or one token array)') };
  }
  return parseWith(body, prompt, limits);
}

export interface MockChatMessage {
  readonly role: string;
  readonly content: string;
}

/** ChatML, the template the mock "model" ships with (llama-server reports the real one in /props). */
export const MOCK_CHAT_TEMPLATE =
  "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

/** The prompt MOCK_CHAT_TEMPLATE renders for these messages, with the generation prompt. */
export function applyMockChatTemplate(messages: readonly MockChatMessage[]): string {
  return messages.map((message) => `<|im_start|>${message.role}\n${message.content}<|im_end|>\n`).join('') + '<|im_start|>assistant\n';
}

/** `content` may be a string, null, or an array of parts of which the text ones count (OpenAI's shapes). */
function messageText(content: unknown): string | undefined {
  if (content === null || content === undefined) return '';
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return undefined;
  let text = '';
  for (const part of content) {
    if (!isRecord(part) || part['type'] !== 'text' || typeof part['text'] !== 'string') return undefined;
    text += part['text'];
  }
  return text;
}

/** A body's `messages` as role/text pairs, or the error llama-server gives for them. */
export function parseChatMessages(body: Readonly<Record<string, unknown>>): { ok: true; messages: MockChatMessage[] } | { ok: false; error: MockEngineError } {
  const messages = body['messages'];
  // llama-server's oaicompat_chat_params_parse: "Expected 'messages' to be an array".
  if (!Array.isArray(messages) || messages.length === 0) return { ok: false, error: invalidRequest("Expected 'messages' to be a non-empty array") };
  const parsedMessages: MockChatMessage[] = [];
  for (const message of messages) {
    const text = isRecord(message) ? messageText(message['content']) : undefined;
    if (!isRecord(message) || typeof message['role'] !== 'string' || text === undefined) {
      return { ok: false, error: invalidRequest("each message needs a string 'role' and a text 'content'") };
    }
    parsedMessages.push({ role: message['role'], content: text });
  }
  return { ok: true, messages: parsedMessages };
}

export function parseOpenAiChatBody(raw: unknown, limits: CompletionLimits): ParseResult {
  if (!isRecord(raw)) return { ok: false, error: invalidRequest('invalid chat request: expected a JSON object') };
  const body = withoutNulls(raw);
  const messages = parseChatMessages(body);
  if (!messages.ok) return messages;
  return parseWith(body, applyMockChatTemplate(messages.messages), limits);
}

/** POST /apply-template (llama-server): `{messages}` → `{prompt}`, the chat template rendered. */
export function applyTemplateAnswer(raw: unknown): { status: number; body: unknown } {
  if (!isRecord(raw)) return invalidRequest('invalid request: expected a JSON object');
  const messages = parseChatMessages(withoutNulls(raw));
  return messages.ok ? { status: 200, body: { prompt: applyMockChatTemplate(messages.messages) } } : messages.error;
}

export interface OpenAiWireContext {
  /** `oaicompat_model`: llama-server's model name (the alias, else the model file's name), whatever the request says. */
  readonly model: string;
  /** `system_fingerprint`: the build_info. */
  readonly buildInfo: string;
}

const ID_ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** llama-server's gen_chatcmplid(): "chatcmpl-" and 32 alphanumerics, for chat and text completions alike. */
export function mockCompletionId(): string {
  const bytes = randomBytes(32);
  let id = 'chatcmpl-';
  for (const byte of bytes) id += ID_ALPHABET[byte % ID_ALPHABET.length];
  return id;
}

function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

function finishReason(final: NativeFinalResult): 'stop' | 'length' {
  return final.stop_type === 'eos' ? 'stop' : 'length';
}

function usage(final: NativeFinalResult): Record<string, unknown> {
  return {
    completion_tokens: final.tokens_predicted,
    prompt_tokens: final.tokens_evaluated,
    total_tokens: final.tokens_predicted + final.tokens_evaluated,
    prompt_tokens_details: { cached_tokens: final.timings.cache_n },
  };
}

const DONE = 'data: [DONE]\n\n';

/** POST /v1/completions. Key order as llama-server's (nlohmann ordered_json). */
export function openAiCompletionWire(context: OpenAiWireContext): CompletionWire {
  const id = mockCompletionId();
  const model = JSON.stringify(context.model);
  const fingerprint = JSON.stringify(context.buildInfo);
  const afterCreated = `,"model":${model},"system_fingerprint":${fingerprint},"object":"text_completion","id":"${id}"}\n\n`;
  const result = (final: NativeFinalResult): Record<string, unknown> => ({
    choices: [{ text: final.content, index: 0, logprobs: null, finish_reason: finishReason(final) }],
    created: nowSeconds(),
    model: context.model,
    system_fingerprint: context.buildInfo,
    object: 'text_completion',
    usage: usage(final),
    id,
    timings: final.timings,
  });
  return {
    token: (tokenId) => `data: {"choices":[{"text":${pieceJson(tokenId)},"index":0,"logprobs":null,"finish_reason":null}],"created":${nowSeconds()}${afterCreated}`,
    streamEnd: (final) => `data: ${JSON.stringify(result(final))}\n\n${DONE}`,
    body: result,
  };
}

/** POST /v1/chat/completions. */
export function openAiChatWire(context: OpenAiWireContext, includeUsage: boolean): CompletionWire {
  const id = mockCompletionId();
  const afterCreated = `,"id":"${id}","model":${JSON.stringify(context.model)},"system_fingerprint":${JSON.stringify(context.buildInfo)},"object":"chat.completion.chunk"}\n\n`;
  const delta = (deltaJson: string, created: number) =>
    `data: {"choices":[{"finish_reason":null,"index":0,"delta":${deltaJson}}],"created":${created}${afterCreated}`;
  const envelope = { id, model: context.model, system_fingerprint: context.buildInfo, object: 'chat.completion.chunk' };
  return {
    token: (tokenId, generated) => {
      const created = nowSeconds();
      const content = delta(`{"content":${pieceJson(tokenId)}}`, created);
      // "We have to send an initial update to conform to openai behavior" (llama-server).
      return generated === 1 ? delta('{"role":"assistant","content":null}', created) + content : content;
    },
    streamEnd: (final) => {
      const created = nowSeconds();
      const chunks: Record<string, unknown>[] = [
        { choices: [{ finish_reason: finishReason(final), index: 0, delta: {} }], created, ...envelope },
      ];
      // OpenAI's spec: the usage chunk has an empty `choices`.
      if (includeUsage) chunks.push({ choices: [], created, ...envelope, usage: usage(final) });
      chunks[chunks.length - 1] = { ...chunks[chunks.length - 1], timings: final.timings };
      return chunks.map((chunk) => `data: ${JSON.stringify(chunk)}\n\n`).join('') + DONE;
    },
    body: (final) => ({
      choices: [{ finish_reason: finishReason(final), index: 0, message: { role: 'assistant', content: final.content } }],
      created: nowSeconds(),
      model: context.model,
      system_fingerprint: context.buildInfo,
      object: 'chat.completion',
      usage: usage(final),
      id,
      timings: final.timings,
    }),
  };
}

export interface MockModelFacts {
  readonly name: string;
  readonly aliases: readonly string[];
  readonly contextSize: number;
}

/** GET /v1/models (also /models): answered while loading too, then with `meta: null`. */
export function modelsBody(facts: MockModelFacts, ready: boolean): unknown {
  return {
    models: [
      {
        name: facts.name,
        model: facts.name,
        modified_at: '',
        size: '',
        digest: '',
        type: 'model',
        description: '',
        tags: [''],
        capabilities: ['completion'],
        parameters: '',
        details: { parent_model: '', format: 'gguf', family: '', families: [''], parameter_size: '', quantization_level: '' },
      },
    ],
    object: 'list',
    data: [
      {
        id: facts.name,
        aliases: facts.aliases,
        tags: [],
        object: 'model',
        created: nowSeconds(),
        owned_by: 'llamacpp',
        // Synthetic: the mock has no weights. n_ctx_train is the configured context.
        meta: ready ? { vocab_type: 1, n_vocab: MOCK_VOCAB_SIZE, n_ctx_train: facts.contextSize, n_embd: 64, n_params: 0, size: 0 } : null,
      },
    ],
  };
}
