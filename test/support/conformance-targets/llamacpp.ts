import { spawnSync } from 'node:child_process';
import { ensureLlamaServer, parseBuildInfo } from '../../../cli/llama-server-build';
import { MOCK_BUILD_INFO } from '../../../gpu-workers/engines/mock-llamacpp/mock-engine';
import type { ConformanceTarget } from '../engine-conformance';
import { cpuReplicaOptions, llamaServerPool, PROVISION_TIMEOUT_MS, provisionSyntheticEngine } from '../llama-server-pool';

/** A real llama-server (the cached CPU build) on the synthetic model, one slot. */
export const llamaServerTarget: ConformanceTarget = {
  name: 'llama.cpp: a real llama-server',
  engine: 'llamacpp',
  provisionTimeoutMs: PROVISION_TIMEOUT_MS,
  async prepare() {
    await provisionSyntheticEngine();
    const binary = await ensureLlamaServer();
    // The engine's version as the binary itself prints it, not as the adapter read it from /props.
    const printed = spawnSync(binary.path, ['--version'], { encoding: 'utf8' });
    return {
      custom: llamaServerPool(),
      replicaOptions: cpuReplicaOptions,
      engineVersion: parseBuildInfo(`${printed.stdout}${printed.stderr}`),
      // The synthetic model decodes ~0.5 ms a token here: ~1 s of work to cancel partway.
      taskCtx: 2048,
      longTaskTokens: 1900,
      testDouble: false,
    };
  },
};

/** The llama.cpp test double: the suite proves it imitates what the adapter relies on, and that health says what it is. */
export const llamaCppDoubleTarget: ConformanceTarget = {
  name: 'llama.cpp: the in-process test double',
  engine: 'llamacpp',
  provisionTimeoutMs: 30_000,
  prepare: () =>
    Promise.resolve({
      custom: { engineRuntime: { kind: 'mock', slots: 1, ttft_ms: 5, inter_token_ms: 10 } },
      engineVersion: MOCK_BUILD_INFO,
      taskCtx: 2048,
      longTaskTokens: 1900,
      testDouble: true,
    }),
};
