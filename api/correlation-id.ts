import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

const CORRELATION_HEADER = 'x-correlation-id';
const ACCEPTABLE_ID = /^[\x21-\x7e]{1,128}$/;

/** OC-CTRL-2052: echo a well-formed X-Correlation-Id, else mint a UUIDv4. Used as Fastify's request id. */
export function correlationIdOf(request: IncomingMessage): string {
  const offered = request.headers[CORRELATION_HEADER];
  return typeof offered === 'string' && ACCEPTABLE_ID.test(offered) ? offered : randomUUID();
}

export { CORRELATION_HEADER };
