import { hasErrorCode } from '../../core/errors';
import type { CompletionSummary, EngineToken } from '../../gpu-workers/engines/engine-adapter';

/** Drains an adapter's completion: the tokens it yielded and the summary it returned. */
export async function collect(stream: AsyncGenerator<EngineToken, CompletionSummary, void>): Promise<{ tokens: EngineToken[]; summary: CompletionSummary }> {
  const tokens: EngineToken[] = [];
  for (;;) {
    const step = await stream.next();
    if (step.done === true) return { tokens, summary: step.value };
    tokens.push(step.value);
  }
}

/** The ErrorCode a promise fails with, or the error's name (AbortError); a promise that succeeds fails the test. */
export async function failureCode(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    if (hasErrorCode(error)) return error.code;
    // Not instanceof: an AbortError (a DOMException) may come from another realm than jest's Error.
    if (typeof error === 'object' && error !== null && 'name' in error) return String(error.name);
    throw error;
  }
  throw new Error('expected a failure');
}
