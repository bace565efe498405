import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { OrchConfig } from '../core/config';
import { ErrorCode, OrchError } from '../core/errors';
import { errorEnvelopeOf, sendError, sendOpenAiError } from './error-envelope';
import type { GatewayContext } from './gateway-context';
import { isOpenAiRoute } from './openai/openai-routes';
import { bindSseGuard, SseBufferBudget } from './sse-backpressure';

/**
 * Issue 13 "bad input everywhere": what the gateway refuses before a route runs, always with an answer in the
 * error envelope (the OpenAI routes in OpenAI's shape), never a crash or a reset without one.
 *
 * - a body over `gateway.body_limit_bytes`: 413 `INVALID_PARAMS` — by its Content-Length here, or while it is
 *   read (a chunked body) in the content-type parser; the rest of the body is read and dropped, so the client
 *   sees the answer instead of a reset;
 * - more than `gateway.max_concurrent_requests` in flight (SSE streams count until they end): 503
 *   `POOL_UNAVAILABLE` with Retry-After; workers' /internal calls are never refused, so running tasks keep
 *   streaming;
 * - past `gateway.max_connections` open sockets Node closes a new one on arrival (nothing can be answered
 *   before a request is read); counted;
 * - headers not complete within `headers_timeout_ms` (slowloris), or a request not received within
 *   `request_timeout_ms`: 408 with the envelope, written by Node's clientError path, then the socket closes.
 */

/** Retry-After for a refusal at the concurrency cap: streams end and free places within about a second. */
const CAP_RETRY_AFTER_MS = 1_000;

/** Fastify's server options for the limits (the server is created with them). */
export function httpServerOptions(gateway: OrchConfig['gateway']) {
  return {
    bodyLimit: gateway.body_limit_bytes,
    requestTimeout: gateway.request_timeout_ms,
    http: {
      headersTimeout: gateway.headers_timeout_ms,
      // Node checks the timeouts every 30 s by default: a slowloris socket would live that much longer.
      connectionsCheckingInterval: Math.min(1_000, gateway.headers_timeout_ms),
    },
    clientErrorHandler: clientErrorHandler(gateway),
  };
}

/** The refusals that run before authentication and the route: one onRequest hook, registered first. */
export function registerHttpLimits(app: FastifyInstance, context: GatewayContext): void {
  const { gateway, streams } = context.config;
  const sseGuard = new SseBufferBudget(streams.max_buffered_bytes, context.metrics, context.logger);
  let inFlight = 0;
  context.metrics.addCollector(() => context.metrics.set('httpRequestsInFlight', {}, inFlight));

  app.server.maxConnections = gateway.max_connections;
  app.server.on('drop', () => context.metrics.inc('httpConnectionsDropped', {}));

  app.addHook('onRequest', async (request, reply) => {
    const length = Number(request.headers['content-length'] ?? 0);
    if (length > gateway.body_limit_bytes) {
      return refuse(context, request, reply, tooLarge(gateway.body_limit_bytes));
    }
    if (request.url.startsWith('/internal/')) return undefined;
    if (inFlight >= gateway.max_concurrent_requests) {
      context.metrics.inc('httpRequestsRefused', {});
      const message = `the gateway is serving its limit of ${gateway.max_concurrent_requests} concurrent requests (streams included); retry`;
      return refuse(context, request, reply, new OrchError(ErrorCode.POOL_UNAVAILABLE, message, { retryAfterMs: CAP_RETRY_AFTER_MS }));
    }
    inFlight += 1;
    reply.raw.once('close', () => {
      inFlight -= 1;
    });
    bindSseGuard(reply.raw, sseGuard);
    return undefined;
  });
}

/** The error a body over the limit gets (413); also used for a chunked body found too large while read. */
export function tooLarge(limitBytes: number): OrchError {
  return new OrchError(ErrorCode.INVALID_PARAMS, `the request body is over the ${limitBytes}-byte limit`, { tooLarge: true });
}

function refuse(context: GatewayContext, request: FastifyRequest, reply: FastifyReply, error: OrchError): FastifyReply {
  context.telemetry.httpError(error.code);
  return isOpenAiRoute(request) ? sendOpenAiError(reply, error) : sendError(reply, error);
}

/**
 * Node's clientError path (no request object, so no route): a malformed request, headers over Node's 16 KiB,
 * or a timeout. Answered in the envelope, then the socket is closed, as Node and Fastify do by default.
 */
function clientErrorHandler(gateway: OrchConfig['gateway']): (error: Error & { code?: string }, socket: Socket) => void {
  return (error, socket) => {
    if (error.code === 'ECONNRESET' || socket.destroyed) return;
    const [status, message] =
      error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [408, `request timeout: headers within ${gateway.headers_timeout_ms} ms and the whole request within ${gateway.request_timeout_ms} ms`]
        : error.code === 'HPE_HEADER_OVERFLOW'
          ? [431, 'the request headers are too large']
          : [400, 'malformed HTTP request'];
    const body = JSON.stringify(errorEnvelopeOf(new OrchError(ErrorCode.INVALID_PARAMS, message)));
    if (socket.writable) {
      socket.write(
        `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
      );
    }
    socket.destroy(error);
  };
}
