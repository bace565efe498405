import { POOL_DEFAULTS } from '../../core/config';
import type { TritonServerRuntimeConfig } from '../../core/config';
import { ErrorCode } from '../../core/errors';
import { createTritonAdapter } from '../engines/triton/triton-adapter';
import type { EngineAdapter } from '../engines/engine-adapter';
import type { EngineLauncher, LaunchedEngine, LaunchProgress } from './engine-launcher';
import type { LlamaServerLauncherOptions } from './llama-server-launcher';
import { createLlamaServerLauncher } from './llama-server-launcher';
import { ReplicaFailure } from './replica-failure';
import { runSelfTest } from './self-test';
import { spawnTritonServer } from './triton-server-process';
import type { TritonServerProcess } from './triton-server-process';

const READY_POLL_MS = 100;

export interface TritonServerLauncherOptions extends Omit<LlamaServerLauncherOptions, 'runtime'> {
  readonly runtime: TritonServerRuntimeConfig;
}

/** Waits until Triton and its model answer ready, failing early when the server ends first. */
async function waitUntilReady(server: TritonServerProcess, adapter: EngineAdapter, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let ended: ReplicaFailure | undefined;
  void server.exited.then((failure) => {
    ended = failure;
  });
  let detail = 'no answer';
  while (Date.now() < deadline) {
    if (ended !== undefined) throw ended;
    const health = await adapter.health(AbortSignal.timeout(2_000)).catch((error: unknown) => ({ ready: false, detail: String(error) }));
    if (health.ready) return;
    detail = health.detail ?? 'loading';
    await new Promise((resolve) => setTimeout(resolve, READY_POLL_MS));
  }
  if (ended !== undefined) throw ended;
  throw new ReplicaFailure(ErrorCode.WORKER_RESET, 'load_timeout', `Triton not ready within ${timeoutMs} ms (${detail})`);
}

/**
 * The triton-server runtime: a llama-server started exactly as the llama-server runtime starts one (model
 * verified, headroom checked, self-tested), then a real Triton whose Python-backend model generates with it
 * (.specs/engines/triton.md). The replica speaks Triton only: its adapter, self-test, health and metrics are
 * Triton's. Either process ending fails the replica; a stop ends both.
 */
export function createTritonServerLauncher(options: TritonServerLauncherOptions): EngineLauncher {
  const { pool, runtime, logger } = options;
  const contextPerSlot = pool.ctx ?? POOL_DEFAULTS.ctx;
  const engine = createLlamaServerLauncher({ ...options, runtime: { ...runtime, kind: 'llama-server' } });

  return {
    mockEngine: false,
    checkHost: () => engine.checkHost(),
    async launch(progress: LaunchProgress, modelRef: string): Promise<LaunchedEngine> {
      const tritonServer = options.artifacts.tritonServer;
      if (!tritonServer) throw new ReplicaFailure(ErrorCode.WORKER_RESET, 'config_mismatch', 'no Triton server is provisioned for this pool worker (PoolArtifacts.tritonServer)', false);
      const triton = await tritonServer();
      // The wrapped engine's own self-test is part of loading here: the replica's self-test is Triton's.
      const inner = await engine.launch({ enter: (phase) => (phase === 'self_test' ? undefined : progress.enter(phase)) }, modelRef);
      const stopInner = (): Promise<void> => inner.stop();
      let server: TritonServerProcess | undefined;
      let adapter: EngineAdapter | undefined;
      try {
        if (inner.engineUrl === undefined) throw new Error('the llama-server launcher reported no engine URL');
        server = await spawnTritonServer({
          python: triton.python,
          modelName: runtime.model_name,
          llamaServerPort: Number(new URL(inner.engineUrl).port),
          contextPerSlot,
          slots: runtime.slots,
          engineBuild: inner.properties.engineVersion,
          modelPath: inner.properties.modelPath ?? '',
        });
        logger.info({ pid: server.pid, engine_url: server.baseUrl, metrics_url: server.metricsUrl, model_name: runtime.model_name, pytriton: triton.version, llama_server: inner.engineUrl }, 'Triton server started');
        const started = server;
        const tritonAdapter = createTritonAdapter({ baseUrl: started.baseUrl, modelName: runtime.model_name, metricsUrl: started.metricsUrl });
        adapter = tritonAdapter;
        await waitUntilReady(started, tritonAdapter, runtime.load_timeout_ms);
        progress.enter('self_test');
        const report = await runSelfTest(tritonAdapter, { slots: runtime.slots, contextPerSlot });
        logger.info({ self_test_ms: report.durationMs, decoded_tokens: report.decodedTokens, engine_version: report.properties.engineVersion }, 'start-up self-test passed');
        const stop = async (): Promise<void> => {
          await tritonAdapter.close();
          await started.stop();
          await stopInner();
        };
        return {
          adapter: tritonAdapter,
          properties: report.properties,
          mockEngine: false,
          kvBytesPerToken: inner.kvBytesPerToken,
          modelRef,
          modelDigest: inner.modelDigest,
          engineUrl: started.baseUrl,
          pid: started.pid,
          selfTest: async () => {
            const again = await runSelfTest(tritonAdapter, { slots: runtime.slots, contextPerSlot });
            logger.info({ self_test_ms: again.durationMs, decoded_tokens: again.decodedTokens }, 'self-test passed again');
          },
          // Triton without its engine answers every request with an error: either ending fails the replica.
          failed: Promise.race([started.exited, inner.failed]),
          stop,
        };
      } catch (error) {
        await adapter?.close();
        await server?.stop();
        await stopInner();
        throw error;
      }
    },
  };
}
