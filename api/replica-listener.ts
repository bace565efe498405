import { request, type Dispatcher } from 'undici';
import { internalAuthHeaders } from '../activities/internal-auth';

export interface ReplicaListenerCall {
  readonly method: 'POST' | 'PUT' | 'DELETE';
  /** Under the listener's base URL, e.g. `/internal/v1/tokenize`. */
  readonly path: string;
  /** Sent as JSON (a string is sent as it is: already JSON). */
  readonly body?: unknown;
  readonly internalToken: string;
  readonly dispatcher?: Dispatcher | undefined;
  readonly signal?: AbortSignal | undefined;
}

/**
 * One call from a gateway to a pool worker's internal listener (gpu-workers/fast-start/fast-start-server.ts):
 * fast starts and their withdrawal, prompt counts, stream hand-overs. Authenticated with the internal
 * channel's token; the answer's body is parsed as JSON when it is JSON, else undefined. Throws when the
 * replica cannot be reached (or the signal fires); each caller decides what that means for it.
 */
export async function callReplicaListener(baseUrl: string, call: ReplicaListenerCall): Promise<{ statusCode: number; body: unknown }> {
  const headers = internalAuthHeaders(call.internalToken);
  const response = await request(`${baseUrl}${call.path}`, {
    method: call.method,
    headers: call.body === undefined ? headers : { 'content-type': 'application/json', ...headers },
    ...(call.body === undefined ? {} : { body: typeof call.body === 'string' ? call.body : JSON.stringify(call.body) }),
    ...(call.dispatcher === undefined ? {} : { dispatcher: call.dispatcher }),
    ...(call.signal === undefined ? {} : { signal: call.signal }),
  });
  const text = await response.body.text();
  let body: unknown;
  try {
    body = text.length === 0 ? undefined : (JSON.parse(text) as unknown);
  } catch {
    body = undefined;
  }
  return { statusCode: response.statusCode, body };
}
