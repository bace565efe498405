import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { ErrorCode, OrchError } from '../../core/errors';
import { TaskRequestSchema } from '../../core/task-request';
import { assertOwnsTask } from '../auth/task-ownership';
import type { GatewayContext } from '../gateway-context';
import { SseResponse } from '../sse-response';
import { streamPartsFromWorkflow } from '../stream-from-result';
import { relayStream, serveLiveStream } from '../stream-relay';
import { describeRunningTask, takeOverStream } from '../stream-handover';
import { FramePositions, toSseFrame } from '../sse-frames';
import { cancelTask, submitTask, unknownTask } from '../task-lifecycle';

const TaskIdParamsSchema = z.object({ id: z.uuid() });
/** The cancel body is optional (spec §2.2): none, `{}`, or a reason for the logs. */
const CancelRequestSchema = z.object({ reason: z.string().min(1).max(200).optional() }).optional();

/** The data plane (spec §2.2): submit, stream, cancel. */
export function registerTaskRoutes(app: FastifyInstance, context: GatewayContext): void {
  app.post('/v1/tasks', (request, reply) => createTask(context, request, reply));
  app.get('/v1/tasks/:id/stream', (request, reply) => streamTask(context, request, reply));
  app.post('/v1/tasks/:id/cancel', (request, reply) => cancelTaskRoute(context, request, reply));
}

async function createTask(context: GatewayContext, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const parsed = TaskRequestSchema.safeParse(request.body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue && issue.path.length > 0 ? `${issue.path.join('.')}: ` : '';
    throw new OrchError(ErrorCode.INVALID_PARAMS, `${where}${issue?.message ?? 'invalid TaskRequest'}`);
  }
  const admission = await submitTask(context, parsed.data, context.auth.clientIdOf(request), request.log);
  return reply.code(202).send(admission);
}

async function streamTask(context: GatewayContext, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> {
  const { id: taskId } = parseTaskIdParams(request.params);
  await assertOwnsTask(context, taskId, context.auth.clientIdOf(request));
  const lastEventId = parseLastEventId(request.headers['last-event-id']);
  const live = context.hub.get(taskId);
  if (live) {
    serveLiveStream(live, lastEventId, reply, request.id, request.log);
    return undefined;
  }
  const running = await describeRunningTask(context, taskId);
  // Admitted by another gateway and still running: relay its live stream.
  if (running?.holder !== undefined && (await relayStream(context, running.holder, taskId, lastEventId, reply, request.id))) return undefined;
  // Still running, but the gateway that held its stream is gone (or was this one before a restart): take it over.
  if (running !== undefined) {
    serveLiveStream(await takeOverStream(context, running, request.log), lastEventId, reply, request.id, request.log);
    return undefined;
  }
  const parts = await streamPartsFromWorkflow(context.client, taskId, context.config.pools[0]?.engine ?? 'llamacpp');
  if (!parts) throw unknownTask(taskId);
  reply.hijack();
  const sse = new SseResponse(reply.raw, request.id);
  const positions = new FramePositions();
  for (const part of parts) {
    const id = positions.idOf(part);
    if (lastEventId === undefined || id > lastEventId) sse.write(toSseFrame(id, part));
  }
  sse.end();
  return undefined;
}

async function cancelTaskRoute(context: GatewayContext, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const { id: taskId } = parseTaskIdParams(request.params);
  const cancelRequest = CancelRequestSchema.safeParse(request.body);
  if (!cancelRequest.success) throw new OrchError(ErrorCode.INVALID_PARAMS, `reason: ${cancelRequest.error.issues[0]?.message ?? 'invalid'}`);
  await assertOwnsTask(context, taskId, context.auth.clientIdOf(request));
  await cancelTask(context, taskId, request.log, cancelRequest.data?.reason);
  return reply.code(204).send();
}

function parseTaskIdParams(params: unknown): { id: string } {
  const parsed = TaskIdParamsSchema.safeParse(params);
  // Task ids are UUIDs: anything else names no task.
  if (!parsed.success) throw new OrchError(ErrorCode.INVALID_PARAMS, 'no such task: task ids are UUIDs', { notFound: true });
  return parsed.data;
}

function parseLastEventId(header: string | string[] | undefined): number | undefined {
  if (typeof header !== 'string' || !/^\d{1,9}$/.test(header)) return undefined;
  return Number(header);
}



