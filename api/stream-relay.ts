import type { FastifyBaseLogger, FastifyReply } from 'fastify';
import { request as httpRequest } from 'undici';
import { internalAuthHeaders } from '../activities/internal-auth';
import type { GatewayContext } from './gateway-context';
import { SseResponse } from './sse-response';
import type { TaskStream } from './task-stream';

/**
 * A task's live stream lives on the gateway that admitted it (design §2: the only emitter). Another
 * gateway — one behind the same load balancer, or another process of `npm start` — finds that holder in
 * the workflow's memo and relays from it, so a client that lands elsewhere (or reconnects elsewhere with
 * Last-Event-ID) keeps receiving live tokens instead of waiting for the result.
 */

/** Serves a live stream from this gateway's hub: replay after `lastEventId`, then follow. */
export function serveLiveStream(live: TaskStream, lastEventId: number | undefined, reply: FastifyReply, correlationId: string, log: FastifyBaseLogger): void {
  reply.hijack();
  const sse = new SseResponse(reply.raw, correlationId);
  const subscription = live.subscribe(lastEventId, (frame) => sse.write(frame), () => sse.end());
  if (!subscription.complete) {
    log.warn({ job_id: live.taskId, last_event_id: lastEventId }, 'resume point no longer buffered; replaying what is kept');
  }
  sse.onClose(subscription.unsubscribe);
}

/**
 * Relays the holder's stream to this client byte for byte (its frames keep their ids, so Last-Event-ID
 * works across gateways). Resolves false when the holder no longer has it (ended and lingered out, or
 * gone): the caller then serves the durable result.
 */
export async function relayStream(
  context: Pick<GatewayContext, 'internalToken'>,
  holder: string,
  taskId: string,
  lastEventId: number | undefined,
  reply: FastifyReply,
  correlationId: string,
): Promise<boolean> {
  const abort = new AbortController();
  let response;
  try {
    response = await httpRequest(`${holder}/internal/v1/tasks/${encodeURIComponent(taskId)}/stream`, {
      method: 'GET',
      headers: { ...internalAuthHeaders(context.internalToken), ...(lastEventId === undefined ? {} : { 'last-event-id': String(lastEventId) }) },
      signal: abort.signal,
    });
  } catch {
    return false;
  }
  if (response.statusCode !== 200) {
    await response.body.dump();
    return false;
  }
  reply.hijack();
  const sse = new SseResponse(reply.raw, correlationId);
  sse.onClose(() => abort.abort());
  // Whole frames only: our own keepalive comment must never land inside a relayed frame.
  let pending = '';
  try {
    for await (const chunk of response.body) {
      pending += (chunk as Buffer).toString('utf8');
      const boundary = pending.lastIndexOf('\n\n');
      if (boundary < 0) continue;
      sse.writeEncoded(pending.slice(0, boundary + 2));
      pending = pending.slice(boundary + 2);
    }
  } catch {
    // The holder went away mid-stream, or our client did: the client resumes with Last-Event-ID.
  }
  sse.end();
  return true;
}

/** Forwards a cancel to the gateway holding the stream, so nothing more is emitted once the cancel is acknowledged (ORCH-3026). */
export async function cancelAtHolder(context: Pick<GatewayContext, 'internalToken'>, holder: string, taskId: string, log: FastifyBaseLogger): Promise<void> {
  try {
    const response = await httpRequest(`${holder}/internal/v1/tasks/${encodeURIComponent(taskId)}/cancel`, {
      method: 'POST',
      headers: internalAuthHeaders(context.internalToken),
    });
    await response.body.dump();
  } catch (error) {
    log.warn({ err: error, job_id: taskId, holder }, 'cancel not forwarded to the gateway holding the stream; the workflow still cancels the task');
  }
}
