import { z } from 'zod';
import { stringify } from 'yaml';
import { ERROR_TRAITS, type ErrorCode } from '../../core/errors';
import { TaskRequestSchema } from '../../core/task-request';
import { AdmissionResponseSchema, ConfigChangeSchema, DrainRequestSchema, ErrorEnvelopeSchema, PoolHealthSchema, PoolOperationAcceptedSchema, ReloadRequestSchema, ReplicaSetSchema, SseEventSchemas } from './api-schemas';
import { SessionInfoSchema } from './session-schemas';
import { ChatCompletionRequestSchema, CompletionRequestSchema } from '../openai/openai-request';
import { ModelListSchema, OpenAiErrorSchema } from './openai-schemas';

/** Where the generated document is kept in the repository; a test keeps it diff-clean (cli/generate-openapi.ts). */
export const OPENAPI_FILE = '.specs/openapi.yaml';
export const OPENAPI_PATH = '/v1/openapi.json';

type JsonObject = Record<string, unknown>;

function schemaOf(schema: z.ZodType): JsonObject {
  // Refinements (the prompt's byte bound, "a completion needs a prompt") cannot be stated in JSON Schema.
  const json = z.toJSONSchema(schema, { target: 'openapi-3.0', unrepresentable: 'any', io: 'input' }) as JsonObject;
  delete json['$schema'];
  return json;
}

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const errorResponse = (description: string) => ({ description, content: { 'application/json': { schema: ref('ErrorEnvelope') } } });
const correlationHeaders = { 'X-Correlation-Id': { $ref: '#/components/headers/XCorrelationId' } };

/**
 * What every route may answer whatever it does (api/http-limits.ts): 413 for a body over
 * `gateway.body_limit_bytes`, 503 POOL_UNAVAILABLE with Retry-After at `gateway.max_concurrent_requests`.
 */
const GATEWAY_LIMIT_ERRORS = [413, 503] as const;

/** The typed errors a route can answer, as OpenAPI responses keyed by status (several codes may share one). */
function errorResponses(routeStatuses: readonly number[]): JsonObject {
  const byStatus = new Map<number, ErrorCode[]>();
  for (const [code, traits] of Object.entries(ERROR_TRAITS) as [ErrorCode, (typeof ERROR_TRAITS)[ErrorCode]][]) {
    byStatus.set(traits.httpStatus, [...(byStatus.get(traits.httpStatus) ?? []), code]);
  }
  const statuses = [...new Set([...routeStatuses, ...GATEWAY_LIMIT_ERRORS])].sort((a, b) => a - b);
  const responses: JsonObject = {};
  for (const status of statuses) {
    const codes =
      status === 404
        ? ['INVALID_PARAMS (the resource does not exist)']
        : status === 413
          ? ['INVALID_PARAMS (the request body is over gateway.body_limit_bytes)']
          : (byStatus.get(status) ?? []);
    const response: JsonObject = { ...errorResponse(`ErrorEnvelope: ${codes.join(', ')}`), headers: correlationHeaders };
    if (status === 429 || status === 503) {
      response['headers'] = {
        ...correlationHeaders,
        'Retry-After': { schema: { type: 'string', pattern: '^[0-9]+$' }, description: 'Seconds, at least 1, when the body has retry_after_ms.' },
        'X-Backoff-Ms': { schema: { type: 'integer', format: 'int64', minimum: 0 }, description: 'Milliseconds, when the body has retry_after_ms.' },
      };
    }
    responses[String(status)] = response;
  }
  return responses;
}

const AUTH_ERRORS = [401, 403] as const;

/** The OpenAI-compatible routes answer errors in OpenAI's shape, with the same statuses and headers. */
function openAiErrorResponses(statuses: readonly number[]): JsonObject {
  const responses = errorResponses(statuses);
  for (const [status, response] of Object.entries(responses)) {
    // ORCH-3015: a prompt over the context takes OpenAI's own code, which clients test for.
    const code = status === '400' ? "the contract's code, or context_length_exceeded when the prompt's tokens + max_tokens exceed ctx" : "the contract's code";
    responses[status] = { ...(response as JsonObject), description: `OpenAiError (code: ${code})`, content: { 'application/json': { schema: ref('OpenAiError') } } };
  }
  return responses;
}

/** An OpenAI-compatible completion route: JSON, or with `stream: true` OpenAI's SSE chunks ending with `data: [DONE]`. */
function openAiCompletionOperation(operationId: string, requestSchema: string, description: string, correlationParameter: JsonObject): JsonObject {
  return {
    operationId,
    description,
    parameters: [correlationParameter, { name: 'X-Orch-Priority', in: 'header', required: false, schema: { type: 'string', enum: ['interactive', 'batch'] } }],
    requestBody: { required: true, content: { 'application/json': { schema: ref(requestSchema) } } },
    responses: {
      '200': {
        description: 'The completion, or its chunks when stream is true; X-Orch-Task-Id names the task (find it in the Web UI by TaskId)',
        headers: { ...correlationHeaders, 'X-Orch-Task-Id': { schema: { type: 'string', format: 'uuid' } } },
        content: { 'application/json': { schema: { type: 'object' } }, 'text/event-stream': { schema: { type: 'string' } } },
      },
      ...openAiErrorResponses([400, ...AUTH_ERRORS, 404, 429, 500, 503]),
    },
  };
}

/**
 * The public API (OrchQueue v1 as implemented), generated from the zod schemas the routes validate with.
 * Served at GET /v1/openapi.json and written to .specs/openapi.yaml. Append a path here with its route.
 */
export function buildOpenApiDocument(): JsonObject {
  const taskIdParameter = { $ref: '#/components/parameters/TaskId' };
  const sessionIdParameter = { $ref: '#/components/parameters/SessionId' };
  const correlationParameter = { $ref: '#/components/parameters/XCorrelationId' };
  const poolIdParameter = { name: 'id', in: 'path', required: true, schema: { type: 'string', minLength: 1, maxLength: 128 } };
  return {
    openapi: '3.0.3',
    info: {
      title: 'llama-orch — OrchQueue v1',
      version: '1.0.0',
      description:
        'Generated from the zod schemas by cli/generate-openapi.ts; do not edit by hand. Every /v1 route but this document needs an API key ' +
        '(Authorization: Bearer <key>, or X-API-Key) with the scope of its plane: data (tasks) or control (pools).',
    },
    servers: [{ url: '/' }],
    security: [{ bearerAuth: [] }, { apiKeyHeader: [] }],
    paths: {
      '/v1/tasks': {
        post: {
          operationId: 'createTask',
          'x-req-id': ['ORCH-2001', 'ORCH-2007', 'ORCH-2008', 'ORCH-3015', 'ORCH-3035', 'ORCH-3036'],
          parameters: [correlationParameter],
          requestBody: { required: true, content: { 'application/json': { schema: ref('TaskRequest') } } },
          responses: {
            '202': { description: 'Admitted', headers: correlationHeaders, content: { 'application/json': { schema: ref('AdmissionResponse') } } },
            ...errorResponses([400, ...AUTH_ERRORS, 404, 429, 500, 503]),
          },
        },
      },
      '/v1/tasks/{id}/stream': {
        get: {
          operationId: 'streamTask',
          'x-req-id': ['ORCH-2002'],
          parameters: [taskIdParameter, correlationParameter, { name: 'Last-Event-ID', in: 'header', required: false, schema: { type: 'string' } }],
          responses: {
            '200': {
              description: 'SSE stream: started, token*, metrics*, then end or error',
              headers: correlationHeaders,
              content: { 'text/event-stream': { schema: { type: 'string' } } },
              'x-sse-events': Object.fromEntries(Object.entries(SseEventSchemas).map(([name, schema]) => [name, schemaOf(schema)])),
            },
            ...errorResponses([400, ...AUTH_ERRORS, 404, 500]),
          },
        },
      },
      '/v1/tasks/{id}/cancel': {
        post: {
          operationId: 'cancelTask',
          'x-req-id': ['ORCH-2003', 'ORCH-3026'],
          parameters: [taskIdParameter, correlationParameter],
          responses: { '204': { description: 'Cancelled; no token follows', headers: correlationHeaders }, ...errorResponses([400, ...AUTH_ERRORS, 404, 500]) },
        },
      },
      '/v1/sessions/{id}': {
        get: {
          operationId: 'getSession',
          'x-req-id': ['ORCH-2004', 'ORCH-3021'],
          parameters: [sessionIdParameter, correlationParameter],
          responses: {
            '200': { description: 'The session (this tenant\'s only)', headers: correlationHeaders, content: { 'application/json': { schema: ref('SessionInfo') } } },
            ...errorResponses([400, ...AUTH_ERRORS, 404, 500]),
          },
        },
        delete: {
          operationId: 'deleteSession',
          'x-req-id': ['ORCH-2005', 'ORCH-3022'],
          parameters: [sessionIdParameter, correlationParameter],
          responses: {
            '204': { description: 'Forgotten; the KV eviction on its replica is recorded (a Temporal workflow)', headers: correlationHeaders },
            ...errorResponses([400, ...AUTH_ERRORS, 404, 500]),
          },
        },
      },
      '/v1/pools/{id}/health': {
        get: {
          operationId: 'getPoolHealth',
          'x-req-id': ['ORCH-2103'],
          parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string', minLength: 1, maxLength: 128 } }, correlationParameter],
          responses: {
            '200': { description: 'Pool health', headers: correlationHeaders, content: { 'application/json': { schema: ref('PoolHealth') } } },
            ...errorResponses([400, ...AUTH_ERRORS, 404, 500]),
          },
        },
      },
      '/v1/pools/{id}/drain': {
        post: {
          operationId: 'drainPool',
          'x-req-id': ['ORCH-2101', 'OC-CTRL-2002'],
          description: 'Starts a drain workflow: the pool takes no new task (503 POOL_UNAVAILABLE), in-flight tasks finish, those still running at deadline_ms end with POOL_UNAVAILABLE. A pool already running an operation answers 503 POOL_UNAVAILABLE naming it.',
          parameters: [poolIdParameter, correlationParameter],
          requestBody: { required: true, content: { 'application/json': { schema: ref('DrainRequest') } } },
          responses: {
            '202': { description: 'Drain started', headers: correlationHeaders, content: { 'application/json': { schema: ref('PoolOperationAccepted') } } },
            ...errorResponses([400, ...AUTH_ERRORS, 404, 500, 503]),
          },
        },
      },
      '/v1/pools/{id}/reload': {
        post: {
          operationId: 'reloadPool',
          'x-req-id': ['ORCH-2102', 'OC-CTRL-2003', 'ORCH-3031', 'ORCH-3033'],
          description:
            'Starts a reload workflow. Canary (ORCH-3033; the default on a serving pool of more than one replica): one replica drains and restarts on new_model_ref (checksum, headroom, self-test) while the others keep serving the old model, is checked again for canary_observe_ms, then the pool drains and the rest follow; a canary that fails is the only replica rolled back. all_at_once: every replica drains and restarts together. Either way the pool switches to the new model in one step once every replica runs it, then resumes; a replica that fails after the canary sends every replica back to the previous model (result rolled_back). Progress: health metrics.pool_state.operation.reload (phase, steps). Reloading to the previous ref is the manual rollback. 400 when the ref is not servable by the pool.',
          parameters: [poolIdParameter, correlationParameter],
          requestBody: { required: true, content: { 'application/json': { schema: ref('ReloadRequest') } } },
          responses: {
            '202': { description: 'Reload started', headers: correlationHeaders, content: { 'application/json': { schema: ref('PoolOperationAccepted') } } },
            ...errorResponses([400, ...AUTH_ERRORS, 404, 500, 503]),
          },
        },
      },
      '/v1/pools/{id}/resume': {
        post: {
          operationId: 'resumePool',
          'x-req-id': ['ORCH-2101'],
          description: "llama-orch's addition: undoes a drain (every replica polls again, then the pool admits tasks).",
          parameters: [poolIdParameter, correlationParameter],
          responses: {
            '202': { description: 'Resume started', headers: correlationHeaders, content: { 'application/json': { schema: ref('PoolOperationAccepted') } } },
            ...errorResponses([400, ...AUTH_ERRORS, 404, 500, 503]),
          },
        },
      },
      '/v1/replicasets': {
        get: {
          operationId: 'listReplicaSets',
          'x-req-id': ['ORCH-2104', 'OC-CTRL-2004', 'ORCH-3007'],
          description: 'Live replicas grouped by pool and replica-set key, with load (busy/total slots) and the pool\'s SLO window.',
          parameters: [correlationParameter],
          responses: {
            '200': { description: 'Replica sets', headers: correlationHeaders, content: { 'application/json': { schema: { type: 'array', items: ref('ReplicaSet') } } } },
            ...errorResponses([...AUTH_ERRORS, 500]),
          },
        },
      },
      '/v1/config/reload': {
        post: {
          operationId: 'reloadConfig',
          'x-req-id': ['ORCH-3031'],
          description:
            "llama-orch's addition: re-reads this gateway's config file, validates all of it and swaps the live parts (queue capacities and full policies, rate limits, quotas, API keys) in one step. A change that needs a restart is refused with 400 naming the field.",
          parameters: [correlationParameter],
          responses: {
            '200': { description: 'Reloaded', headers: correlationHeaders, content: { 'application/json': { schema: ref('ConfigChange') } } },
            ...errorResponses([400, ...AUTH_ERRORS, 500]),
          },
        },
      },
      '/v1/config/revert': {
        post: {
          operationId: 'revertConfig',
          'x-req-id': ['ORCH-3031', 'ORCH-3033'],
          description: "llama-orch's addition: swaps the config before the last reload back in one step.",
          parameters: [correlationParameter],
          responses: {
            '200': { description: 'Reverted', headers: correlationHeaders, content: { 'application/json': { schema: ref('ConfigChange') } } },
            ...errorResponses([400, ...AUTH_ERRORS, 500]),
          },
        },
      },
      '/v1/chat/completions': {
        post: openAiCompletionOperation('createChatCompletion', 'ChatCompletionRequest', "OpenAI-compatible (llama-orch's addition): an ordinary task whose messages the engine renders with the model's chat template.", correlationParameter),
      },
      '/v1/completions': {
        post: openAiCompletionOperation('createCompletion', 'CompletionRequest', "OpenAI-compatible (llama-orch's addition): an ordinary task on a raw prompt.", correlationParameter),
      },
      '/v1/models': {
        get: {
          operationId: 'listModels',
          description: "OpenAI-compatible (llama-orch's addition): the models the pools serve now, with the pools serving each.",
          parameters: [correlationParameter],
          responses: {
            '200': { description: 'The models', headers: correlationHeaders, content: { 'application/json': { schema: ref('ModelList') } } },
            ...openAiErrorResponses([...AUTH_ERRORS, 500]),
          },
        },
      },
      [OPENAPI_PATH]: {
        get: {
          operationId: 'getOpenApiDocument',
          'x-req-id': ['ORCH-3044'],
          security: [],
          responses: { '200': { description: 'This document', content: { 'application/json': { schema: { type: 'object' } } } }, ...errorResponses([]) },
        },
      },
    },
    components: {
      securitySchemes: {
        bearerAuth: { type: 'http', scheme: 'bearer', description: 'An API key bound to a tenant and scopes (ORCH-3035).' },
        apiKeyHeader: { type: 'apiKey', in: 'header', name: 'X-API-Key' },
      },
      parameters: {
        XCorrelationId: { name: 'X-Correlation-Id', in: 'header', required: false, schema: { type: 'string', maxLength: 128 } },
        TaskId: { name: 'id', in: 'path', required: true, schema: { type: 'string', format: 'uuid' } },
        SessionId: { name: 'id', in: 'path', required: true, schema: { type: 'string', format: 'uuid' } },
      },
      headers: {
        XCorrelationId: { schema: { type: 'string' }, description: 'Echoed from the request when well-formed, else a new UUIDv4 (OC-CTRL-2052).' },
      },
      schemas: {
        TaskRequest: schemaOf(TaskRequestSchema),
        AdmissionResponse: schemaOf(AdmissionResponseSchema),
        ErrorEnvelope: schemaOf(ErrorEnvelopeSchema),
        PoolHealth: schemaOf(PoolHealthSchema),
        SessionInfo: schemaOf(SessionInfoSchema),
        DrainRequest: schemaOf(DrainRequestSchema),
        ReloadRequest: schemaOf(ReloadRequestSchema),
        ReplicaSet: schemaOf(ReplicaSetSchema),
        ConfigChange: schemaOf(ConfigChangeSchema),
        PoolOperationAccepted: schemaOf(PoolOperationAcceptedSchema),
        ChatCompletionRequest: schemaOf(ChatCompletionRequestSchema),
        CompletionRequest: schemaOf(CompletionRequestSchema),
        OpenAiError: schemaOf(OpenAiErrorSchema),
        ModelList: schemaOf(ModelListSchema),
      },
    },
    'x-generated': true,
  };
}

export function renderOpenApiYaml(): string {
  return `# Generated by \`npm run openapi\` (cli/generate-openapi.ts) from the zod schemas. Do not edit.\n${stringify(buildOpenApiDocument(), { lineWidth: 0, aliasDuplicateObjects: false })}`;
}
