import type { FastifyInstance } from 'fastify';
import type { GatewayContext } from '../gateway-context';
import { buildOpenApiDocument, OPENAPI_PATH } from '../openapi/openapi-document';

/**
 * GET /metrics (Prometheus text, ORCH-3028) and GET /v1/openapi.json (ORCH-3044). Neither needs an API
 * key: /metrics is outside /v1 and carries no tenant data beyond tenant names (docs/operations.md).
 */
export function registerObservabilityRoutes(app: FastifyInstance, context: GatewayContext): void {
  const document = buildOpenApiDocument();
  app.get(OPENAPI_PATH, async (_request, reply) => reply.send(document));
  app.get('/metrics', async (_request, reply) => reply.type(context.metrics.contentType).send(await context.metrics.exposition()));
}
