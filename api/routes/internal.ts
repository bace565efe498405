import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { ERROR_CODES } from '../../core/errors';
import { WorkerChunkSchema } from '../../core/stream-parts';
import type { GatewayContext } from '../gateway-context';
import { bearerMatches } from '../../platform/internal-token';
import { observeSessionChunk } from '../sessions/session-chunk-observer';
import { serveLiveStream } from '../stream-relay';

const TerminalPartSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('end'), tokensOut: z.int().min(0), decodeMs: z.number().min(0) }),
  z.strictObject({ type: z.literal('error'), code: z.enum(ERROR_CODES), message: z.string(), engine: z.string() }),
  z.strictObject({ type: z.literal('cancelled') }),
]);
const ParamsSchema = z.object({ id: z.string().min(1).max(128) });

/**
 * The internal channel (design §2): pool workers push token chunks, the workflow worker reports how a
 * task ended. Authenticated with its own bearer token, separate from client credentials.
 */
export function registerInternalRoutes(app: FastifyInstance, context: GatewayContext): void {
  app.register((internal, _options, done) => {
    internal.addHook('onRequest', async (request, reply) => {
      if (!bearerMatches(request.headers.authorization, context.internalToken)) {
        await reply.code(401).send({ message: 'internal channel: bad or missing token' });
      }
    });

    internal.post('/internal/v1/tasks/:id/chunks', async (request, reply) => {
      const { id } = ParamsSchema.parse(request.params);
      const chunk = WorkerChunkSchema.parse(request.body);
      const stream = context.hub.get(id);
      if (!stream) return reply.code(404).send({ verdict: 'unknown' });
      if (chunk.parts.some((part) => part.type === 'metrics' && part.values['phase'] === 'dispatched')) {
        context.ledger.dispatched(stream.poolId, id);
      }
      const verdict = stream.acceptChunk(chunk);
      context.telemetry.chunk(id, chunk);
      if (verdict === 'accepted') {
        observeSessionChunk(context.sessions, id, chunk);
        for (const part of chunk.parts) if (part.type === 'metrics') context.replicaFrames.observe(stream.poolId, stream.engine, part.values);
      }
      if (stream.state !== 'live') context.ledger.finished(stream.poolId, id);
      return reply.code(200).send({ verdict });
    });

    // Another gateway relays this live stream to a client that reached it (api/stream-relay.ts).
    internal.get('/internal/v1/tasks/:id/stream', async (request, reply) => {
      const { id } = ParamsSchema.parse(request.params);
      const live = context.hub.get(id);
      if (!live) return reply.code(404).send({ verdict: 'unknown' });
      const header = request.headers['last-event-id'];
      const lastEventId = typeof header === 'string' && /^\d{1,9}$/.test(header) ? Number(header) : undefined;
      serveLiveStream(live, lastEventId, reply, request.id, request.log);
      return undefined;
    });

    // A client's cancel that reached another gateway: this one stops emitting at once (ORCH-3026).
    internal.post('/internal/v1/tasks/:id/cancel', async (request, reply) => {
      const { id } = ParamsSchema.parse(request.params);
      const live = context.hub.get(id);
      if (!live) return reply.code(404).send({ verdict: 'unknown' });
      live.cancel();
      await context.fastStarter.withdraw(id);
      context.ledger.withdrawn(live.poolId, id);
      context.sessions.taskEnded(id, false);
      context.telemetry.cancelled(id, 'client');
      return reply.code(204).send();
    });

    internal.post('/internal/v1/tasks/:id/terminal', async (request, reply) => {
      const { id } = ParamsSchema.parse(request.params);
      const part = TerminalPartSchema.parse(request.body);
      const stream = context.hub.get(id);
      if (!stream) return reply.code(404).send({ verdict: 'unknown' });
      context.ledger.finished(stream.poolId, id);
      context.telemetry.terminal(id, part);
      context.sessions.taskEnded(id, part.type === 'end');
      if (part.type === 'cancelled') stream.cancel();
      else stream.finish(part);
      return reply.code(200).send({ verdict: 'accepted' });
    });
    done();
  });
}
