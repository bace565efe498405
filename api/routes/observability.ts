import type { FastifyInstance } from 'fastify';
import type { GatewayContext } from '../gateway-context';
import { buildOpenApiDocument, OPENAPI_PATH } from '../openapi/openapi-document';
import { stackIsWhole } from '../../core/supervised-process';

/**
 * GET /health and GET /livez (issue 15): outside /v1 and without a key, for process managers and probes.
 * /health lists every process `npm start` supervises with its state and restart count, and answers 503
 * while any of them is not running; /livez answers 200 while this process serves HTTP at all.
 */
function registerHealthRoutes(app: FastifyInstance, context: GatewayContext): void {
  app.get('/livez', async (_request, reply) => reply.send({ live: true }));
  app.get('/health', async (_request, reply) => {
    const processes = context.supervision();
    const ready = stackIsWhole(processes);
    return reply.code(ready ? 200 : 503).send({ live: true, ready, processes });
  });
}

/**
 * GET /metrics (Prometheus text, ORCH-3028) and GET /v1/openapi.json (ORCH-3044). Neither needs an API
 * key: /metrics is outside /v1 and carries no tenant data beyond tenant names (docs/operations.md).
 */
export function registerObservabilityRoutes(app: FastifyInstance, context: GatewayContext): void {
  registerHealthRoutes(app, context);
  const document = buildOpenApiDocument();
  app.get(OPENAPI_PATH, async (_request, reply) => reply.send(document));
  app.get('/metrics', async (_request, reply) => reply.type(context.metrics.contentType).send(await context.metrics.exposition()));
}
