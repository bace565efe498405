import type { Logger } from 'pino';
import type { PoolConfig } from '../core/config';
import type { EngineAdapterV1, EngineProperties } from './engines/engine-adapter';
import { createLlamaCppAdapter } from './engines/llamacpp/llamacpp-adapter';
import { startMockEngine } from './engines/mock-llamacpp/mock-engine';

export interface EngineRuntime {
  readonly adapter: EngineAdapterV1;
  readonly properties: EngineProperties;
  /** True when the engine is the mock test double; health and logs say so. */
  readonly mockEngine: boolean;
  stop(): Promise<void>;
}

const READY_TIMEOUT_MS = 120_000;
const READY_POLL_MS = 200;

/** Brings up a `mock` or `external` engine and waits until it is healthy. */
export async function startEngineRuntime(pool: PoolConfig, logger: Logger): Promise<EngineRuntime> {
  const runtime = pool.engine_runtime;
  let stop: () => Promise<void> = () => Promise.resolve();
  let baseUrl: string;
  if (runtime.kind === 'mock') {
    const mock = await startMockEngine({ ttftMs: runtime.ttft_ms, interTokenMs: runtime.inter_token_ms, slots: runtime.slots });
    baseUrl = mock.url;
    stop = () => mock.close();
    logger.warn(
      { engine_url: baseUrl },
      'MOCK ENGINE: this pool is served by a test double that speaks the llama.cpp API; its tokens are not a model\'s',
    );
  } else if (runtime.kind === 'external') {
    baseUrl = runtime.url;
  } else {
    throw new Error(`engine runtime ${runtime.kind} is started by the pool manager (gpu-workers/pool-manager/)`);
  }
  const adapter = createLlamaCppAdapter({ baseUrl });
  try {
    await waitUntilReady(adapter);
    const properties = await adapter.properties();
    return {
      adapter,
      properties,
      // The mock announces itself in build_info, also when reached as an external engine (benchmarks).
      mockEngine: runtime.kind === 'mock' || properties.engineVersion.startsWith('mock-'),
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

async function waitUntilReady(adapter: EngineAdapterV1): Promise<void> {
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
