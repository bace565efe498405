import type { z } from 'zod';
import { OPERATIONS, parseSse, type AdmissionResponse, type PoolHealth, type ReplicaSet, type SessionInfo, type TaskRequest } from '../../clients/typescript/src';
import type { AdmissionResponseSchema, PoolHealthSchema, ReplicaSetSchema } from '../../api/openapi/api-schemas';
import { buildOpenApiDocument } from '../../api/openapi/openapi-document';
import type { SessionInfoSchema } from '../../api/openapi/session-schemas';
import type { TaskRequest as ServerTaskRequest } from '../../core/task-request';

/**
 * Issue 11 item 3: the typed client is checked against the OpenAPI document — every documented OrchQueue
 * operation has a client method on the same route, and no method calls an undocumented one — and its
 * types against the server's zod schemas the document is generated from (a compile-time check: these
 * assignments fail `npm run typecheck` when either side changes).
 */
type Mutual<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const taskRequestMatches: Mutual<TaskRequest, ServerTaskRequest> = true;
const admissionMatches: Mutual<AdmissionResponse, z.infer<typeof AdmissionResponseSchema>> = true;
const poolHealthMatches: Mutual<PoolHealth, z.infer<typeof PoolHealthSchema>> = true;
const sessionMatches: Mutual<SessionInfo, z.infer<typeof SessionInfoSchema>> = true;
const replicaSetMatches: Mutual<ReplicaSet, z.infer<typeof ReplicaSetSchema>> = true;

const OPENAI_OPERATIONS = new Set(['createChatCompletion', 'createCompletion', 'listModels']);

test('issue 11: every OrchQueue operation in the OpenAPI document is a client method on the same method and path, and the client calls nothing else', () => {
  expect([taskRequestMatches, admissionMatches, poolHealthMatches, sessionMatches, replicaSetMatches]).toEqual([true, true, true, true, true]);
  const document = buildOpenApiDocument() as { paths: Record<string, Record<string, { operationId: string }>> };
  const documented = Object.entries(document.paths).flatMap(([path, operations]) =>
    Object.entries(operations).map(([method, operation]) => ({ method: method.toUpperCase(), path, operationId: operation.operationId })),
  );
  const orchQueue = documented.filter((operation) => !OPENAI_OPERATIONS.has(operation.operationId));
  const client = Object.values(OPERATIONS).map((operation) => ({ method: operation.method, path: operation.path, operationId: operation.operationId }));
  const byId = (left: { operationId: string }, right: { operationId: string }) => left.operationId.localeCompare(right.operationId);
  expect([...client].sort(byId)).toEqual([...orchQueue].sort(byId));
});

test('the client\'s SSE parser reads ids, events and data across chunk boundaries and skips keepalive comments', async () => {
  const wire = 'id: 0\nevent: started\ndata: {"queue_position":0,"predicted_start_ms":0}\n\n: keepalive\n\nid: 1\nevent: token\ndata: {"t":"a","i":0}\n\n';
  const encoder = new TextEncoder();
  async function* chunks(): AsyncGenerator<Uint8Array> {
    for (let offset = 0; offset < wire.length; offset += 7) {
      // A network read: each chunk arrives on a later turn of the event loop.
      await Promise.resolve();
      yield encoder.encode(wire.slice(offset, offset + 7));
    }
  }
  const frames = [];
  for await (const frame of parseSse(chunks())) frames.push(frame);
  expect(frames).toEqual([
    { id: '0', event: 'started', data: '{"queue_position":0,"predicted_start_ms":0}' },
    { id: '1', event: 'token', data: '{"t":"a","i":0}' },
  ]);
});
