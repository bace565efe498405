import { spawnSync } from 'node:child_process';
import { ensureLlamaServer, parseBuildInfo } from '../../../cli/llama-server-build';
import { ensurePytriton, TRITON_SERVER_VERSION } from '../../../cli/pytriton-install';
import type { ConformanceTarget } from '../engine-conformance';
import { cpuReplicaOptions, llamaServerPool, PROVISION_TIMEOUT_MS, provisionSyntheticEngine } from '../llama-server-pool';

/**
 * A real Triton Inference Server (tritonserver from the PyPI wheel nvidia-pytriton) serving our Python-backend
 * model, which generates with the cached llama-server build on the synthetic model, one sequence.
 */
export const tritonServerTarget: ConformanceTarget = {
  name: 'Triton: a real tritonserver (nvidia-pytriton) over llama-server',
  engine: 'triton',
  provisionTimeoutMs: PROVISION_TIMEOUT_MS,
  async prepare() {
    await provisionSyntheticEngine();
    await ensurePytriton();
    const binary = await ensureLlamaServer();
    // The server's version as the pinned wheel carries it, and the wrapped engine's build as the binary prints it.
    const printed = spawnSync(binary.path, ['--version'], { encoding: 'utf8' });
    const pool = llamaServerPool();
    return {
      custom: { ...pool, engineRuntime: { ...pool.engineRuntime, kind: 'triton-server', model_name: 'llm' } },
      replicaOptions: cpuReplicaOptions,
      engineVersion: `triton-${TRITON_SERVER_VERSION}+${parseBuildInfo(`${printed.stdout}${printed.stderr}`)}`,
      taskCtx: 2048,
      // The synthetic model behind Triton streams a token every ~1–3 ms here: seconds of work to cancel partway.
      longTaskTokens: 1900,
      testDouble: false,
    };
  },
};
