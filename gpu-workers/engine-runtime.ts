import type { Logger } from 'pino';
import type { PoolConfig } from '../core/config';
import { ADAPTER_UNVERIFIED } from '../core/engines';
import type { EngineAdapter, EngineProperties } from './engines/engine-adapter';
import { engineRegistration } from './engines/engine-registry';

export interface EngineRuntime {
  readonly adapter: EngineAdapter;
  readonly properties: EngineProperties;
  /** True when the engine is a test double; health and logs say so. */
  readonly mockEngine: boolean;
  stop(): Promise<void>;
}

const READY_TIMEOUT_MS = 120_000;
const READY_POLL_MS = 200;

/**
 * Brings up a `mock` or `external` engine and waits until it is healthy. Which process serves (the engine's
 * test double here, or whatever runs at the URL) and which protocol it speaks (the pool's `engine`, through its
 * registered adapter) are chosen separately.
 */
export async function startEngineRuntime(pool: PoolConfig, logger: Logger): Promise<EngineRuntime> {
  const runtime = pool.engine_runtime;
  const registration = engineRegistration(pool.engine);
  let stop: () => Promise<void> = () => Promise.resolve();
  let baseUrl: string;
  if (runtime.kind === 'mock') {
    const double = registration.testDouble;
    if (!double) throw new Error(`${pool.engine} has no test double (config should have refused the mock runtime)`);
    const running = await double.start({ ttftMs: runtime.ttft_ms, interTokenMs: runtime.inter_token_ms, slots: runtime.slots });
    baseUrl = running.url;
    stop = () => running.close();
    logger.warn({ engine: pool.engine, engine_url: baseUrl }, double.announcement);
  } else if (runtime.kind === 'external') {
    baseUrl = runtime.url;
  } else {
    throw new Error(`engine runtime ${runtime.kind} is started by the pool manager (gpu-workers/pool-manager/)`);
  }
  const unverified = ADAPTER_UNVERIFIED[pool.engine];
  if (unverified !== undefined) logger.warn({ engine: pool.engine, engine_url: baseUrl }, unverified);
  const adapter = registration.createAdapter(baseUrl);
  try {
    await waitUntilReady(adapter);
    const properties = await adapter.properties();
    // A double announces itself in its version, also when reached as an external engine (benchmarks).
    const mockEngine = runtime.kind === 'mock' || registration.testDouble?.isDouble(properties) === true;
    if (mockEngine && runtime.kind === 'external') logger.warn({ engine: pool.engine, engine_url: baseUrl }, registration.testDouble?.announcement);
    return {
      adapter,
      properties,
      mockEngine,
      stop: async () => {
        await adapter.close();
        await stop();
      },
    };
  } catch (error) {
    await adapter.close();
    await stop();
    throw error;
  }
}

async function waitUntilReady(adapter: EngineAdapter): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let detail = 'no answer';
  while (Date.now() < deadline) {
    try {
      const health = await adapter.health(AbortSignal.timeout(2_000));
      if (health.ready) return;
      detail = health.detail ?? 'loading';
    } catch (error) {
      detail = (error as Error).message;
    }
    await new Promise((resolve) => setTimeout(resolve, READY_POLL_MS));
  }
  throw new Error(`engine not ready after ${READY_TIMEOUT_MS} ms: ${detail}`);
}
