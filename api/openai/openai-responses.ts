/**
 * OpenAI's response objects (chat.completion, chat.completion.chunk, text_completion, model list), built
 * from a task's tokens and its engine's summary. Shapes as the official clients parse them.
 */
export type OpenAiKind = 'chat' | 'text';

export interface ResponseIdentity {
  readonly kind: OpenAiKind;
  /** The task id: `chatcmpl-<task_id>` / `cmpl-<task_id>`, so the Web UI finds the job by TaskId. */
  readonly taskId: string;
  readonly model: string;
  readonly created: number;
  /** The engine build that served it (llama-server's build_info), once a replica picked the task up. */
  systemFingerprint: string | null;
}

export interface Usage {
  readonly prompt_tokens: number;
  readonly completion_tokens: number;
  readonly total_tokens: number;
}

export type FinishReason = 'stop' | 'length';

export function responseId(identity: ResponseIdentity): string {
  return `${identity.kind === 'chat' ? 'chatcmpl' : 'cmpl'}-${identity.taskId}`;
}

function envelope(identity: ResponseIdentity, object: string): Record<string, unknown> {
  return { id: responseId(identity), object, created: identity.created, model: identity.model, system_fingerprint: identity.systemFingerprint };
}

/** One streamed chunk: the assistant's role first (chat), then text, then the finish reason with no text. */
export function streamChunk(identity: ResponseIdentity, piece: { readonly text?: string; readonly role?: true; readonly finishReason?: FinishReason }): Record<string, unknown> {
  const finishReason = piece.finishReason ?? null;
  if (identity.kind === 'text') {
    return { ...envelope(identity, 'text_completion'), choices: [{ index: 0, text: piece.text ?? '', logprobs: null, finish_reason: finishReason }] };
  }
  const delta = piece.finishReason !== undefined ? {} : { ...(piece.role ? { role: 'assistant' } : {}), content: piece.text ?? '' };
  return { ...envelope(identity, 'chat.completion.chunk'), choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }] };
}

/** `stream_options.include_usage`: a last chunk with no choices and the usage. */
export function usageChunk(identity: ResponseIdentity, usage: Usage): Record<string, unknown> {
  return { ...envelope(identity, identity.kind === 'chat' ? 'chat.completion.chunk' : 'text_completion'), choices: [], usage };
}

/** The whole answer of a request without `stream`. */
export function completionResponse(identity: ResponseIdentity, text: string, finishReason: FinishReason, usage: Usage): Record<string, unknown> {
  if (identity.kind === 'text') {
    return { ...envelope(identity, 'text_completion'), choices: [{ index: 0, text, logprobs: null, finish_reason: finishReason }], usage };
  }
  return {
    ...envelope(identity, 'chat.completion'),
    choices: [{ index: 0, message: { role: 'assistant', content: text, refusal: null }, logprobs: null, finish_reason: finishReason }],
    usage,
  };
}

/** The engine's stop reason as OpenAI's finish_reason: the token limit is `length`, anything else `stop`. */
export function finishReasonOf(stopReason: string | undefined, tokensOut: number, maxTokens: number): FinishReason {
  if (stopReason !== undefined) return stopReason === 'limit' ? 'length' : 'stop';
  return tokensOut >= maxTokens ? 'length' : 'stop';
}
