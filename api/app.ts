import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyRequest } from 'fastify';
import { ENGINES } from '../core/engines';
import { ErrorCode, ERROR_TRAITS, hasErrorCode, OrchError, type OrchErrorDetails } from '../core/errors';
import { correlationIdOf, CORRELATION_HEADER } from './correlation-id';
import { sendError, sendOpenAiError } from './error-envelope';
import { isOpenAiRoute, registerOpenAiRoutes } from './openai/openai-routes';
import type { GatewayContext } from './gateway-context';
import { httpServerOptions, registerHttpLimits, tooLarge } from './http-limits';
import { registerConfigControlRoutes } from './routes/config-control';
import { registerInternalRoutes } from './routes/internal';
import { registerObservabilityRoutes } from './routes/observability';
import { registerPoolControlRoutes } from './routes/pool-control';
import { registerPoolRoutes } from './routes/pools';
import { registerSessionRoutes } from './routes/sessions';
import { registerReplicaSetRoutes } from './routes/replica-sets';
import { registerTaskRoutes } from './routes/tasks';

/** Builds the gateway; `gateway-main.ts` only listens. Tests use it with `inject` or on port 0. */
export function buildApp(context: GatewayContext): FastifyInstance {
  const logger: FastifyBaseLogger = context.logger;
  // Read once: the gateway's HTTP limits need a restart to change (api/config-diff.ts).
  const { gateway } = context.config;
  const app = Fastify({
    loggerInstance: logger,
    // Per-request lines would double the log volume on the hot path; routes log the lifecycle lines.
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: 'correlation_id' }),
    ...httpServerOptions(gateway),
    genReqId: correlationIdOf,
    keepAliveTimeout: 65_000,
    // A malformed URL or an over-long path parameter is the client's mistake: a typed 400, not Fastify's own body
    // (found by the schemathesis run, test/integration/api-fuzz.test.ts).
    frameworkErrors: (error, request, reply) => {
      reply.header(CORRELATION_HEADER, request.id);
      void sendError(reply, new OrchError(ErrorCode.INVALID_PARAMS, error.message));
    },
  });

  app.addHook('onRequest', async (request, reply) => {
    reply.header(CORRELATION_HEADER, request.id);
  });
  registerHttpLimits(app, context);
  acceptEmptyJsonBodies(app, gateway.body_limit_bytes);

  context.auth.register(app);

  app.setErrorHandler((error: FastifyError | OrchError, request, reply) => {
    const typed: TypedError | undefined = hasErrorCode(error)
      ? error
      : isClientError(error)
        ? error.statusCode === 413
          ? tooLarge(gateway.body_limit_bytes)
          : new OrchError(ErrorCode.INVALID_PARAMS, error.message)
        : undefined;
    if (!typed) request.log.error({ err: error }, 'unhandled error');
    const sent = typed ?? new OrchError(ErrorCode.INTERNAL);
    countError(context, request, sent);
    return isOpenAiRoute(request) ? sendOpenAiError(reply, sent) : sendError(reply, sent);
  });
  app.setNotFoundHandler((request, reply) => {
    const error = new OrchError(ErrorCode.INVALID_PARAMS, `no route ${request.method} ${request.url.split('?', 1)[0] ?? ''}`, { notFound: true });
    countError(context, request, error);
    return sendError(reply, error);
  });

  registerTaskRoutes(app, context);
  registerOpenAiRoutes(app, context);
  registerPoolRoutes(app, context);
  registerSessionRoutes(app, context);
  registerPoolControlRoutes(app, context);
  registerReplicaSetRoutes(app, context);
  registerConfigControlRoutes(app, context);
  registerInternalRoutes(app, context);
  registerObservabilityRoutes(app, context);
  return app;
}

/** errors_total for every typed answer; tasks_rejected_total and backpressure for refused submissions. */
function countError(context: GatewayContext, request: FastifyRequest, error: TypedError): void {
  context.telemetry.httpError(error.code);
  const isSubmission = request.method === 'POST' && (request.routeOptions.url === '/v1/tasks' || isOpenAiRoute(request));
  const status = ERROR_TRAITS[error.code].httpStatus;
  // Auth failures are not admission decisions, and a body without a valid engine has no `engine` label
  // value (an "unknown" would take one of the label's 4 budgeted values): both count only in errors_total.
  const engine = error.details?.engine ?? engineOf(request.body);
  if (isSubmission && status !== 401 && status !== 403 && engine !== undefined) {
    context.telemetry.rejected(engine, error.code, error.details?.policyLabel, status);
  }
}

type TypedError = { readonly code: ErrorCode; readonly message: string; readonly details?: OrchErrorDetails };

function engineOf(body: unknown): string | undefined {
  const engine = typeof body === 'object' && body !== null ? (body as { engine?: unknown }).engine : undefined;
  return (ENGINES as readonly unknown[]).includes(engine) ? (engine as string) : undefined;
}

/** Malformed JSON, a wrong content type, an oversized body, a zod failure: the client's mistake. */
function isClientError(error: FastifyError | OrchError): boolean {
  const status = (error as FastifyError).statusCode;
  return (typeof status === 'number' && status >= 400 && status < 500) || (error as { name?: string }).name === 'ZodError';
}

/**
 * Many HTTP clients send `content-type: application/json` with no body on a POST that takes none (a
 * cancel, a resume). Fastify refuses that with 400 before the route runs; here an empty body is simply
 * absent, and each route's own schema says whether it needed one (issue 13: a cancel from any client).
 */
function acceptEmptyJsonBodies(app: FastifyInstance, bodyLimitBytes: number): void {
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string', bodyLimit: bodyLimitBytes }, (_request, body, done) => {
    const text = typeof body === 'string' ? body : body.toString('utf8');
    if (text.trim().length === 0) {
      done(null, undefined);
      return;
    }
    try {
      done(null, JSON.parse(text) as unknown);
    } catch (error) {
      done(new OrchError(ErrorCode.INVALID_PARAMS, `the body is not valid JSON: ${(error as Error).message}`), undefined);
    }
  });
}
