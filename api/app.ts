import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance } from 'fastify';
import { ErrorCode, hasErrorCode, OrchError } from '../core/errors';
import { correlationIdOf, CORRELATION_HEADER } from './correlation-id';
import { sendError } from './error-envelope';
import type { GatewayContext } from './gateway-context';
import { registerInternalRoutes } from './routes/internal';
import { registerPoolRoutes } from './routes/pools';
import { registerTaskRoutes } from './routes/tasks';

const BODY_LIMIT_BYTES = 1024 * 1024;

/** Builds the gateway; `gateway-main.ts` only listens. Tests use it with `inject` or on port 0. */
export function buildApp(context: GatewayContext): FastifyInstance {
  const logger: FastifyBaseLogger = context.logger;
  const app = Fastify({
    loggerInstance: logger,
    // Per-request lines would double the log volume on the hot path; routes log the lifecycle lines.
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: 'correlation_id' }),
    bodyLimit: BODY_LIMIT_BYTES,
    genReqId: correlationIdOf,
    keepAliveTimeout: 65_000,
  });

  app.addHook('onRequest', async (request, reply) => {
    reply.header(CORRELATION_HEADER, request.id);
  });

  app.setErrorHandler((error: FastifyError | OrchError, request, reply) => {
    if (hasErrorCode(error)) return sendError(reply, error);
    if (isClientError(error)) return sendError(reply, new OrchError(ErrorCode.INVALID_PARAMS, error.message));
    request.log.error({ err: error }, 'unhandled error');
    return sendError(reply, new OrchError(ErrorCode.INTERNAL));
  });
  app.setNotFoundHandler((request, reply) =>
    sendError(reply, new OrchError(ErrorCode.INVALID_PARAMS, `no route ${request.method} ${request.url}`, { notFound: true })),
  );

  registerTaskRoutes(app, context);
  registerPoolRoutes(app, context);
  registerInternalRoutes(app, context);
  return app;
}

/** Malformed JSON, a wrong content type, an oversized body, a zod failure: the client's mistake. */
function isClientError(error: FastifyError | OrchError): boolean {
  const status = (error as FastifyError).statusCode;
  return (typeof status === 'number' && status >= 400 && status < 500) || (error as { name?: string }).name === 'ZodError';
}
