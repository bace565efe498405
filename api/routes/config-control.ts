import type { FastifyInstance } from 'fastify';
import type { GatewayContext } from '../gateway-context';

/**
 * ORCH-3031 for the gateway's own config (llama-orch's addition, control scope): reload re-reads the file this
 * gateway started from and swaps the live parts in one step; revert swaps the previous config back. A change
 * that needs a restart is refused with 400 naming the field. Each gateway reloads its own file.
 */
export function registerConfigControlRoutes(app: FastifyInstance, context: GatewayContext): void {
  app.post('/v1/config/reload', async (_request, reply) => reply.send(context.configReloader.reload()));
  app.post('/v1/config/revert', async (_request, reply) => reply.send(context.configReloader.revert()));
}
