import { join } from 'node:path';
import { POOL_DEFAULTS } from '../../core/config';
import type { VllmRuntimeConfig } from '../../core/config';
import { ErrorCode } from '../../core/errors';
import { createVllmAdapter } from '../engines/vllm/vllm-adapter';
import type { EngineLauncher, HostCheck, LaunchedEngine, LaunchProgress } from './engine-launcher';
import { decideInferenceHost } from './gpu-probe';
import { checkHeadroom } from './headroom';
import type { LlamaServerLauncherOptions } from './llama-server-launcher';
import { spawnLlamaServer, waitUntilHealthy } from './llama-server-process';
import { verifyModel } from './model-verification';
import { ReplicaFailure } from './replica-failure';
import { runSelfTest } from './self-test';

const GIB = 1024 * 1024 * 1024;
/** Measured on vLLM 0.32 CPU with the synthetic model: API server + engine core + worker ≈ 3.8 GB with 1 GiB of KV. */
const BASE_RSS_BYTES = 3 * GIB;
/** The weights file of a Hugging Face model directory, whose digest identifies the model (ORCH-3037). */
const WEIGHTS_FILE = 'model.safetensors';

export interface VllmLauncherOptions extends Omit<LlamaServerLauncherOptions, 'runtime' | 'slotSavePath'> {
  readonly runtime: VllmRuntimeConfig;
}

/**
 * vLLM's environment: the CPU backend's KV cache size, and nothing reaching out — no usage statistics, no
 * Hugging Face hub (the model is a local directory).
 */
export function vllmEnvironment(runtime: VllmRuntimeConfig): NodeJS.ProcessEnv {
  return {
    VLLM_CPU_KVCACHE_SPACE: String(runtime.cpu_kv_cache_gib),
    VLLM_NO_USAGE_STATS: '1',
    DO_NOT_TRACK: '1',
    HF_HUB_OFFLINE: '1',
    TRANSFORMERS_OFFLINE: '1',
  };
}

/**
 * The server's command line, minus host and port: the OpenAI-compatible server of the venv's vLLM on the
 * model directory, `--max-model-len` = the pool's ctx (admission and the engine agree), `--max-num-seqs` = the
 * pool's slots, eager mode (no compile step on a CPU), the model served under its catalog ref.
 */
export function vllmArguments(modelDirectory: string, servedName: string, contextSize: number, runtime: VllmRuntimeConfig): string[] {
  return [
    '-m', 'vllm.entrypoints.openai.api_server',
    '--model', modelDirectory,
    '--served-model-name', servedName,
    '--dtype', runtime.dtype,
    '--max-model-len', String(contextSize),
    '--max-num-seqs', String(runtime.slots),
    '--enforce-eager',
    '--disable-uvicorn-access-log',
    ...runtime.extra_args,
  ];
}

/**
 * The vllm runtime: per start, verify the model's weights against their digest, check host memory, start
 * vLLM's server from the cached venv on the catalog model, wait for /health (vLLM's HTTP server comes up
 * after the engine has loaded: ~25 s on 2 cores), run the self-test. vLLM's engine core and worker are child
 * processes, so the server leads a process group of its own and a stop signals the group.
 */
export function createVllmLauncher(options: VllmLauncherOptions): EngineLauncher {
  const { pool, runtime, logger } = options;
  const contextSize = pool.ctx ?? POOL_DEFAULTS.ctx;
  return {
    mockEngine: false,
    async checkHost(): Promise<HostCheck> {
      // The CPU wheel: a GPU host still runs it on the CPU, which ORCH-1101 allows only under the dev override.
      return decideInferenceHost(await options.probeGpus(), false, options.allowCpuInference);
    },

    async launch(progress: LaunchProgress, modelRef: string): Promise<LaunchedEngine> {
      progress.enter('verifying');
      const model = options.models(modelRef);
      if (!model) throw new ReplicaFailure(ErrorCode.INVALID_PARAMS, 'config_mismatch', `model "${modelRef}" is not in models[]`, false);
      const provide = options.artifacts.vllm;
      if (!provide) throw new ReplicaFailure(ErrorCode.WORKER_RESET, 'config_mismatch', 'no vLLM is provisioned for this pool worker (PoolArtifacts.vllm)', false);
      const vllm = await provide();
      const files = await options.artifacts.model(model);
      await options.pidFile?.reapOrphan();
      const verified = await verifyModel(join(files.path, WEIGHTS_FILE), model.sha256 ?? files.recordedSha256);
      await checkHeadroom(
        { hostRamBytes: runtime.host_ram_headroom_bytes ?? BASE_RSS_BYTES + runtime.cpu_kv_cache_gib * GIB + verified.sizeBytes, devices: pool.devices },
        options.memory,
      );

      progress.enter('loading');
      const engine = await spawnLlamaServer({
        binary: vllm.python,
        args: vllmArguments(files.path, modelRef, contextSize, runtime),
        devices: pool.devices,
        env: vllmEnvironment(runtime),
        processGroup: true,
        parentDeathSignal: 'SIGTERM',
      });
      const { pid } = engine;
      if (pid !== undefined && options.pidFile) {
        const { pidFile } = options;
        pidFile.record(pid, vllm.python);
        void engine.exited.then(() => pidFile.clear(pid));
      }
      logger.info({ pid, args: engine.args, vllm: vllm.version }, 'vLLM server started');
      const adapter = createVllmAdapter({ baseUrl: engine.baseUrl, maxNumSeqs: runtime.slots });
      const stop = async (): Promise<void> => {
        await adapter.close();
        await engine.stop(10_000);
      };
      try {
        await waitUntilHealthy(engine, adapter, runtime.load_timeout_ms);
        progress.enter('self_test');
        const report = await runSelfTest(adapter, { slots: runtime.slots, contextPerSlot: contextSize });
        logger.info({ self_test_ms: report.durationMs, decoded_tokens: report.decodedTokens, engine_version: report.properties.engineVersion }, 'start-up self-test passed');
        return {
          adapter,
          properties: report.properties,
          mockEngine: false,
          modelRef,
          modelDigest: verified.digest,
          pid,
          engineUrl: engine.baseUrl,
          selfTest: async () => {
            const again = await runSelfTest(adapter, { slots: runtime.slots, contextPerSlot: contextSize });
            logger.info({ self_test_ms: again.durationMs, decoded_tokens: again.decodedTokens }, 'self-test passed again');
          },
          failed: engine.exited,
          stop,
        };
      } catch (error) {
        await stop();
        throw error;
      }
    },
  };
}
