import type { Logger } from 'pino';
import type { PoolConfig } from '../../core/config';
import { startEngineRuntime } from '../engine-runtime';
import type { EngineLauncher, LaunchedEngine, LaunchProgress } from './engine-launcher';
import { ErrorCode } from '../../core/errors';
import { isMockModelRef } from '../../core/pool-state';
import { ReplicaFailure } from './replica-failure';
import { watchExternalEngine } from './external-engine-watch';
import { runSelfTest } from './self-test';

/** The mock engine's own figure for kv_bytes: a small llama-like model (2 × 8 layers × 4 KV heads × 64 × f16). */
export const MOCK_KV_BYTES_PER_TOKEN = 8_192;
/** An external engine is checked every second; three misses in a row (about 3 s) make its replica fail. */
const EXTERNAL_HEALTH_WATCH = { intervalMs: 1_000, failuresInRow: 3 } as const;

/**
 * The `mock` and `external` runtimes: no model file or process of ours to check, so the engine is
 * Ready once healthy, and an external one fails when it stops answering (external-engine-watch.ts). The mock
 * is a test double, not inference, so ORCH-1101 does not apply; an external engine's host is checked by
 * whoever runs it.
 */
export function createRuntimeLauncher(pool: PoolConfig, logger: Logger): EngineLauncher {
  return {
    mockEngine: pool.engine_runtime.kind === 'mock',
    checkHost: () => Promise.resolve({ cpuInference: false }),
    async launch(progress: LaunchProgress, modelRef: string): Promise<LaunchedEngine> {
      // The mock serves any `mock:` ref (a reload "loads" another test double); an external engine serves its own.
      const servable = pool.engine_runtime.kind === 'mock' ? isMockModelRef(modelRef) || modelRef === pool.model : modelRef === pool.model;
      if (!servable) {
        throw new ReplicaFailure(ErrorCode.INVALID_PARAMS, 'config_mismatch', `the ${pool.engine_runtime.kind} runtime cannot serve model "${modelRef}"`, false);
      }
      progress.enter('loading');
      const runtime = await startEngineRuntime(pool, logger);
      // ORCH-3049 for every engine however it is obtained: decode, cancel and telemetry proven before Ready.
      const expectations = { slots: pool.engine_runtime.kind === 'mock' ? pool.engine_runtime.slots : undefined };
      progress.enter('self_test');
      try {
        const report = await runSelfTest(runtime.adapter, expectations);
        logger.info({ engine: pool.engine, self_test_ms: report.durationMs, decoded_tokens: report.decodedTokens }, 'start-up self-test passed');
      } catch (error) {
        await runtime.stop();
        throw error;
      }
      // The mock lives in this process and dies with it; an external engine can vanish on its own.
      const watch = pool.engine_runtime.kind === 'external' ? watchExternalEngine(runtime.adapter, EXTERNAL_HEALTH_WATCH) : undefined;
      return {
        adapter: runtime.adapter,
        properties: runtime.properties,
        mockEngine: runtime.mockEngine,
        ...(runtime.mockEngine ? { kvBytesPerToken: MOCK_KV_BYTES_PER_TOKEN } : {}),
        modelRef,
        modelDigest: undefined,
        pid: undefined,
        failed: watch?.failed ?? new Promise<ReplicaFailure>(() => undefined),
        selfTest: async () => {
          await runSelfTest(runtime.adapter, expectations);
        },
        stop: () => {
          watch?.stop();
          return runtime.stop();
        },
      };
    },
  };
}
