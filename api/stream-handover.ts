import type { FastifyBaseLogger } from 'fastify';
import { setTimeout as sleep } from 'node:timers/promises';
import { ErrorCode } from '../core/errors';
import { taskWorkflowId } from '../core/ids';
import { SearchAttr } from '../core/search-attributes';
import { callReplicaListener } from './replica-listener';
import type { GatewayContext } from './gateway-context';
import { streamPartsFromWorkflow } from './stream-from-result';
import type { AdmissionMemo } from './task-starter';
import type { TaskStream } from './task-stream';

/** A task whose workflow still runs, as its description tells another gateway. */
export interface RunningTask {
  readonly taskId: string;
  readonly memo: AdmissionMemo | undefined;
  readonly poolId: string | undefined;
  readonly engine: string;
  readonly tenant: string | undefined;
  /** The internal URL of the gateway that admitted it and holds its live stream, when that is not this one. */
  readonly holder: string | undefined;
}

/** How long a replica has to answer a hand-over; a replica that does not answer in time is passed over. */
const HAND_OVER_TIMEOUT_MS = 5_000;
const ASK_AGAIN_MS = 1_000;

/** The task's workflow while it runs, with what a gateway needs to relay or take over its stream; else undefined. */
export async function describeRunningTask(context: Pick<GatewayContext, 'client' | 'internalUrl' | 'config'>, taskId: string): Promise<RunningTask | undefined> {
  try {
    const description = await context.client.workflow.getHandle(taskWorkflowId(taskId)).describe();
    if (description.status.name !== 'RUNNING') return undefined;
    const memo = (description.memo as { admission?: AdmissionMemo } | undefined)?.admission;
    const attributes = description.typedSearchAttributes;
    const holder = memo?.streamSinkUrl;
    return {
      taskId,
      memo,
      poolId: attributes.get(SearchAttr.pool),
      engine: attributes.get(SearchAttr.engine) ?? context.config.pools[0]?.engine ?? 'llamacpp',
      tenant: attributes.get(SearchAttr.clientId),
      holder: holder !== undefined && holder !== context.internalUrl ? holder : undefined,
    };
  } catch {
    return undefined;
  }
}

/**
 * Takes over the live stream of a running task whose gateway is gone (design §2: the gateway holding a
 * stream is its only emitter, so a new one must hold it). This gateway opens the stream in its hub and
 * asks every replica of the task's pool to send the task's tokens here instead; the one decoding it
 * replays the attempt from its first part (gpu-workers/live-relays.ts), so frame ids match what the
 * client saw and Last-Event-ID resumes exactly. Whatever the live feed does not deliver — no replica
 * decodes the task right now, or it is retried elsewhere — comes from the workflow's result when it
 * ends, so the stream always completes.
 *
 * Left as it is: the workflow's memo still names the first gateway (only the workflow can change its
 * memo), so a third gateway takes the stream over again rather than relaying from this one.
 */
export async function takeOverStream(context: GatewayContext, running: RunningTask, log: FastifyBaseLogger): Promise<TaskStream> {
  const { taskId } = running;
  const held = context.hub.get(taskId);
  if (held) return held;
  const admission = { queuePosition: running.memo?.queuePosition ?? 0, predictedStartMs: running.memo?.predictedStartMs ?? 0 };
  const stream = context.hub.open(taskId, running.engine, { type: 'started', ...admission }, {
    requestDigest: running.memo?.requestDigest ?? '',
    admission,
    poolId: running.poolId ?? '',
    tenant: running.tenant,
  });
  void completeFromResult(context, stream, log);
  // Started without a stream (a batch pipeline through the Temporal client): no replica relays it anywhere.
  if (running.memo?.streamSinkUrl === undefined) return stream;
  const handedOver = await askReplicas(context, running, stream);
  log.info({ job_id: taskId, previous_holder: running.holder, handed_over: handedOver }, 'took over the stream of a task whose gateway is gone');
  void askUntilFed(context, running, stream);
  return stream;
}

/**
 * A task still queued when its gateway died starts decoding with the dead gateway as its sink; a replica
 * that said yes may find, a moment later, that its last chunk went to a gateway that no longer holds the
 * stream. So the replicas are asked again every second until a chunk arrives here. Asking stops there, so
 * two gateways that took the same stream over never pull it back and forth; a later attempt on another
 * replica (the first one died) is then served from the result.
 */
async function askUntilFed(context: GatewayContext, running: RunningTask, stream: TaskStream): Promise<void> {
  for (;;) {
    await sleep(ASK_AGAIN_MS);
    if (stream.state !== 'live' || stream.fedByWorker) return;
    await askReplicas(context, running, stream);
  }
}

async function askReplicas(context: GatewayContext, running: RunningTask, stream: TaskStream): Promise<boolean> {
  const replicas = running.poolId === undefined ? [] : context.replicas.replicas(running.poolId);
  const urls = replicas.flatMap((replica) => (typeof replica.fast_start_url === 'string' ? [replica.fast_start_url] : []));
  const answers = await Promise.all(urls.map((url) => askToHandOver(context, url, stream.taskId)));
  return answers.some(Boolean);
}

async function askToHandOver(context: Pick<GatewayContext, 'internalToken' | 'internalUrl'>, replicaUrl: string, taskId: string): Promise<boolean> {
  try {
    const response = await callReplicaListener(replicaUrl, {
      method: 'PUT',
      path: `/internal/v1/relays/${encodeURIComponent(taskId)}/sink`,
      body: { sinkUrl: context.internalUrl },
      internalToken: context.internalToken,
      signal: AbortSignal.timeout(HAND_OVER_TIMEOUT_MS),
    });
    return response.statusCode === 200;
  } catch {
    return false;
  }
}

/** Ends a taken-over stream from the workflow's result, adding what the live feed missed. */
async function completeFromResult(context: Pick<GatewayContext, 'client'>, stream: TaskStream, log: FastifyBaseLogger): Promise<void> {
  try {
    const parts = await streamPartsFromWorkflow(context.client, stream.taskId, stream.engine);
    stream.completeFrom(parts ?? []);
  } catch (error) {
    log.warn({ err: error, job_id: stream.taskId }, 'a taken-over stream could not read its task result');
    stream.finish({ type: 'error', code: ErrorCode.INTERNAL, message: 'the task result could not be read', engine: stream.engine });
  }
}
