import { request } from 'undici';
import type { Engine } from '../../core/engines';
import type { PoolWorkerOptions } from '../../gpu-workers/pool-worker';
import { readStream, tokensOf, waitFor } from './sse-client';
import { startTestStack, taskRequest, waitForReadyReplicas, type CustomPool, type TestStack } from './stack';

/**
 * One engine as the conformance suite brings it up. Everything engine-specific is here; the checks in
 * test/integration/engine-conformance.test.ts are the same for every engine.
 */
export interface ConformanceTarget {
  /** How the test names it: the engine and what serves it (a real server, or a test double). */
  readonly name: string;
  readonly engine: Engine;
  /** First run: installs and builds what the engine needs into ~/.cache/llama-orch. */
  readonly provisionTimeoutMs: number;
  /** Installs (first run) and describes the pool: runtime, model catalog, dev section. */
  prepare(): Promise<ConformancePool>;
}

export interface ConformancePool {
  readonly custom: CustomPool;
  readonly replicaOptions?: Pick<PoolWorkerOptions, 'artifacts' | 'memoryProbe' | 'probeGpus'> | undefined;
  /** What health's engine_version must be: the version the real engine reports of itself, read independently of the adapter. */
  readonly engineVersion: string | RegExp;
  /** The context tasks ask for (at most the pool's). */
  readonly taskCtx: number;
  /** Generated tokens a task may ask for (prompt + these within `taskCtx`) that outlast a cancel on this engine. */
  readonly longTaskTokens: number;
  /** Whether the pool is served by a test double (health must then say so), or a real engine (it must not). */
  readonly testDouble: boolean;
}

export interface ConformanceStack {
  readonly stack: TestStack;
  readonly pool: ConformancePool;
  stop(): Promise<void>;
}

/** Brings the target's pool up through the whole stack: gateway, workflow worker, one pool replica. */
export async function startConformanceStack(target: ConformanceTarget): Promise<ConformanceStack> {
  const pool = await target.prepare();
  const stack = await startTestStack({ ctx: pool.taskCtx, custom: { ...pool.custom, engine: target.engine }, ...(pool.replicaOptions ? { replicaOptions: pool.replicaOptions } : {}), wallMs: 120_000, idleMs: 60_000 });
  await waitForReadyReplicas(stack, 1);
  return { stack, pool, stop: () => stack.stop() };
}

/** A TaskRequest for the stack's pool, naming its engine. */
export function conformanceTask(running: ConformanceStack, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const engine = running.stack.config.pools[0]?.engine ?? 'llamacpp';
  return taskRequest(running.stack, { engine, ctx: running.pool.taskCtx, ...overrides });
}

export async function submitTask(stack: TestStack, body: Record<string, unknown>): Promise<number> {
  const response = await request(`${stack.url}/v1/tasks`, { method: 'POST', headers: { 'content-type': 'application/json', ...stack.authHeaders }, body: JSON.stringify(body) });
  await response.body.dump();
  return response.statusCode;
}

export async function cancelTask(stack: TestStack, taskId: string): Promise<number> {
  const response = await request(`${stack.url}/v1/tasks/${taskId}/cancel`, { method: 'POST', headers: stack.authHeaders });
  await response.body.dump();
  return response.statusCode;
}

export async function getJson(stack: TestStack, path: string): Promise<Record<string, unknown>> {
  const response = await request(`${stack.url}${path}`, { headers: stack.authHeaders });
  return (await response.body.json()) as Record<string, unknown>;
}

export async function getText(stack: TestStack, path: string): Promise<string> {
  const response = await request(`${stack.url}${path}`, { headers: stack.authHeaders });
  return response.body.text();
}

/** Streams one task to its end. */
export async function runTask(running: ConformanceStack, overrides: Record<string, unknown> = {}): Promise<{ taskId: string; events: Awaited<ReturnType<typeof readStream>['finished']> }> {
  const { stack } = running;
  const body = conformanceTask(running, overrides);
  const taskId = String(body['task_id']);
  expect(await submitTask(stack, body)).toBe(202);
  const events = await readStream(`${stack.url}/v1/tasks/${taskId}/stream`).finished;
  return { taskId, events };
}

export { readStream, tokensOf, waitFor };
