import { parseConfig } from '../../core/config';
import { vllmArguments, vllmEnvironment } from '../../gpu-workers/pool-manager/vllm-launcher';
import { configProblemsOf } from '../support/config-problems';

const model = {
  ref: 'tiny-hf',
  source: { kind: 'synthetic-hf', seed: 42, hidden_size: 128, layers: 2, heads: 2, intermediate_size: 256, context_length: 8192, vocab_size: 512 },
};
const vllmPool = { id: 'v', engine: 'vllm', model: 'tiny-hf', ctx: 4096, devices: [0], engine_runtime: { kind: 'vllm' } };

test('OC-CONFIG-6002 ORCH-3055: a vllm pool runs the vllm runtime on a synthetic-hf catalog model; defaults fill the runtime', () => {
  const { config } = parseConfig({ models: [model], pools: [vllmPool] });
  expect(config.pools[0]?.engine_runtime).toEqual(
    expect.objectContaining({ kind: 'vllm', slots: 1, cpu_kv_cache_gib: 1, dtype: 'float32', extra_args: [], load_timeout_ms: 300_000 }),
  );
  expect(config.models[0]?.source).toEqual(model.source);
  expect(configProblemsOf({ pools: [vllmPool] })).toEqual([`pools[0].model: a vllm pool's model must name an entry of models[] (no ref "tiny-hf")`]);
});

test('OC-CONFIG-6002: the vllm runtime is refused for another engine, and llama-server for a vllm pool', () => {
  expect(configProblemsOf({ models: [model], pools: [{ ...vllmPool, engine: 'llamacpp' }] })).toEqual([
    'pools[0].engine_runtime.kind: the vllm runtime runs vllm, not llamacpp; use a runtime for llamacpp or kind: external',
  ]);
  expect(configProblemsOf({ models: [model], pools: [{ ...vllmPool, engine_runtime: { kind: 'llama-server' } }] })).toEqual([
    'pools[0].engine_runtime.kind: the llama-server runtime runs llamacpp, not vllm; use a runtime for vllm or kind: external',
  ]);
});

test('ORCH-3045: a vllm pool of several sequences shares decode batches, so it must declare best_effort', () => {
  const several = { ...vllmPool, engine_runtime: { kind: 'vllm', slots: 4 } };
  expect(configProblemsOf({ models: [model], pools: [several] })).toHaveLength(1);
  expect(configProblemsOf({ models: [model], pools: [several] })[0]).toMatch(/^pools\[0\]\.engine_runtime\.slots: vllm decodes the requests of its 4 slots in shared batches/);
  expect(configProblemsOf({ models: [model], pools: [{ ...several, determinism: 'best_effort' }] })).toEqual([]);
});

test('the server is started on the model directory under the catalog ref, ctx as --max-model-len, slots as --max-num-seqs, with nothing reaching out', () => {
  const { config } = parseConfig({ models: [model], pools: [{ ...vllmPool, determinism: 'best_effort', engine_runtime: { kind: 'vllm', slots: 2, extra_args: ['--seed', '7'] } }] });
  const pool = config.pools[0];
  if (pool?.engine_runtime.kind !== 'vllm') throw new Error('expected a vllm runtime');
  expect(vllmArguments('/models/tiny', 'tiny-hf', 4096, pool.engine_runtime)).toEqual([
    '-m', 'vllm.entrypoints.openai.api_server',
    '--model', '/models/tiny',
    '--served-model-name', 'tiny-hf',
    '--dtype', 'float32',
    '--max-model-len', '4096',
    '--max-num-seqs', '2',
    '--enforce-eager',
    '--disable-uvicorn-access-log',
    '--seed', '7',
  ]);
  expect(vllmEnvironment(pool.engine_runtime)).toEqual({
    VLLM_CPU_KVCACHE_SPACE: '1',
    VLLM_NO_USAGE_STATS: '1',
    DO_NOT_TRACK: '1',
    HF_HUB_OFFLINE: '1',
    TRANSFORMERS_OFFLINE: '1',
  });
});
