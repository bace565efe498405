import type { Logger } from 'pino';
import { POOL_DEFAULTS } from '../../core/config';
import { ErrorCode } from '../../core/errors';
import type { LlamaServerRuntimeConfig, ModelCatalogEntry, PoolConfig } from '../../core/config';
import { createLlamaCppAdapter } from '../engines/llamacpp/llamacpp-adapter';
import type { EngineLauncher, HostCheck, LaunchedEngine, LaunchProgress } from './engine-launcher';
import { checkDeviceMask, decideInferenceHost } from './gpu-probe';
import type { GpuProbeResult } from './gpu-probe';
import { checkHeadroom, defaultHeadroom } from './headroom';
import { checkDeviceBudget, describeDeviceBudget, planDeviceBudget } from './device-budget';
import { describeTensorSplit } from '../../core/tensor-split';
import type { MemoryProbe } from './headroom';
import { llamaServerArguments, llamaServerFlags, spawnLlamaServer, waitUntilHealthy } from './llama-server-process';
import { verifyModel } from './model-verification';
import type { PidFile } from '../../platform/pid-file';
import type { PoolArtifacts } from './pool-artifacts';
import { ReplicaFailure } from './replica-failure';
import { runSelfTest } from './self-test';
import { mkdirSync } from 'node:fs';
import { readGgufHeader } from '../models/gguf-reader';
import { kvBytesPerToken } from '../models/kv-bytes-per-token';

export interface LlamaServerLauncherOptions {
  readonly pool: PoolConfig;
  readonly runtime: LlamaServerRuntimeConfig;
  /** The model catalog: a launch resolves its model ref here (a reload names another entry). */
  readonly models: (ref: string) => ModelCatalogEntry | undefined;
  readonly allowCpuInference: boolean;
  readonly artifacts: PoolArtifacts;
  readonly memory: MemoryProbe;
  readonly probeGpus: () => Promise<GpuProbeResult>;
  readonly logger: Logger;
  /** Where llama-server may save slots; its slot erase action (DELETE /v1/sessions/:id) needs one. */
  readonly slotSavePath?: string | undefined;
  /** Where the replica records its engine's pid, so an engine a SIGKILLed pool worker left is stopped. */
  readonly pidFile?: PidFile | undefined;
}

/**
 * The llama-server runtime (design §4): per start, verify the model's checksum, check memory
 * headroom, start llama-server pinned to the device mask, wait for health, run the self-test.
 */
export function createLlamaServerLauncher(options: LlamaServerLauncherOptions): EngineLauncher {
  const { pool, runtime, logger } = options;
  const contextPerSlot = pool.ctx ?? POOL_DEFAULTS.ctx;
  let useGpu = false;

  /**
   * ORCH-3052 / OC-POOL-3021: each device must hold its share of the weights and of the KV cache the slots
   * allocate at load (ctx × slots), the smallest GPU's share included; the figure is logged either way.
   */
  const checkVram = async (modelBytes: number, kvBytesPerToken: number | undefined): Promise<void> => {
    const input = { devices: pool.devices, tensorSplit: pool.tensor_split, modelBytes, kvBytesPerToken, contextPerSlot, slots: runtime.slots, configuredBytes: runtime.vram_headroom_bytes };
    const plan = planDeviceBudget(input);
    const memory = await options.memory.deviceMemory(pool.devices);
    logger.info(
      { tensor_split: describeTensorSplit(pool.devices, pool.tensor_split), ctx: contextPerSlot, slots: runtime.slots, kv_bytes_per_token: kvBytesPerToken ?? null, vram_budget: describeDeviceBudget(plan) },
      memory === undefined ? 'VRAM budget per device (nvidia-smi did not report memory: not checked)' : 'VRAM budget per device',
    );
    if (memory !== undefined) checkDeviceBudget(plan, memory, input);
  };

  return {
    mockEngine: false,
    async checkHost(): Promise<HostCheck> {
      const binary = await options.artifacts.llamaServer();
      const gpus = await options.probeGpus();
      const decision = decideInferenceHost(gpus, binary.backend === 'cuda', options.allowCpuInference);
      useGpu = !decision.cpuInference;
      if (useGpu) checkDeviceMask(pool.devices, gpus);
      // Once per process: on the CPU the mask pins nothing, which the operator should know it was not checked for.
      else logger.warn({ devices: pool.devices, gpus: gpus.detail }, `device mask [${pool.devices.join(', ')}] is not used: inference runs on the CPU (development override), so it is not checked against this host's GPUs`);
      return decision;
    },

    async launch(progress: LaunchProgress, modelRef: string): Promise<LaunchedEngine> {
      progress.enter('verifying');
      const model = options.models(modelRef);
      if (!model) throw new ReplicaFailure(ErrorCode.INVALID_PARAMS, 'config_mismatch', `model "${modelRef}" is not in models[]`, false);
      const binary = await options.artifacts.llamaServer();
      const file = await options.artifacts.model(model);
      // Before the headroom check: an orphaned engine holds the very RAM and VRAM the check measures.
      await options.pidFile?.reapOrphan();
      const verified = await verifyModel(file.path, model.sha256 ?? file.recordedSha256);
      const defaults = defaultHeadroom(verified.sizeBytes, useGpu);
      // VRAM is checked per device below, with each device's share of the weights and the KV cache.
      await checkHeadroom({ hostRamBytes: runtime.host_ram_headroom_bytes ?? defaults.hostRamBytes, devices: pool.devices }, options.memory);
      const kvBytes = kvBytesPerTokenOf(verified.path, logger);
      if (useGpu) await checkVram(verified.sizeBytes, kvBytes);

      progress.enter('loading');
      const flags = await llamaServerFlags(binary.path);
      const args = llamaServerArguments(
        {
          modelPath: verified.path,
          slots: runtime.slots,
          contextPerSlot,
          threads: runtime.threads,
          useGpu,
          extraArgs: runtime.extra_args,
          slotSavePath: slotSavePathOf(options.slotSavePath),
          devices: pool.devices,
          tensorSplit: pool.tensor_split,
        },
        flags,
      );
      const engine = await spawnLlamaServer({ binary: binary.path, args, devices: pool.devices });
      const { pid } = engine;
      if (pid !== undefined && options.pidFile) {
        const { pidFile } = options;
        pidFile.record(pid, binary.path);
        void engine.exited.then(() => pidFile.clear(pid));
      }
      logger.info(
        { pid: engine.pid, args: engine.args, cuda_visible_devices: pool.devices.join(','), tensor_split: describeTensorSplit(pool.devices, pool.tensor_split) },
        'llama-server started',
      );
      const adapter = createLlamaCppAdapter({ baseUrl: engine.baseUrl });
      const stop = async (): Promise<void> => {
        await adapter.close();
        await engine.stop();
      };
      try {
        await waitUntilHealthy(engine, adapter, runtime.load_timeout_ms);
        progress.enter('self_test');
        const report = await runSelfTest(adapter, { slots: runtime.slots, contextPerSlot });
        logger.info({ self_test_ms: report.durationMs, decoded_tokens: report.decodedTokens }, 'start-up self-test passed');
        return {
          adapter,
          properties: report.properties,
          mockEngine: false,
          kvBytesPerToken: kvBytes,
          modelRef,
          modelDigest: verified.digest,
          engineUrl: engine.baseUrl,
          pid: engine.pid,
          selfTest: async () => {
            const again = await runSelfTest(adapter, { slots: runtime.slots, contextPerSlot });
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

function slotSavePathOf(path: string | undefined): string | undefined {
  if (path !== undefined) mkdirSync(path, { recursive: true });
  return path;
}

/** ORCH-3022 kv_bytes from the model's GGUF metadata; a header we cannot read only costs the figure. */
function kvBytesPerTokenOf(modelPath: string, logger: Logger): number | undefined {
  try {
    return kvBytesPerToken(readGgufHeader(modelPath));
  } catch (error) {
    logger.warn({ err: error }, 'GGUF metadata unreadable; kv_bytes will read 0');
    return undefined;
  }
}
