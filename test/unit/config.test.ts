import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { parseConfig } from '../../core/config';
import { configProblemsOf } from '../support/config-problems';
import { loadConfigFile } from '../../core/config-file';

const minimalPool = { id: 'p1', engine: 'llamacpp', model: 'mock:x', devices: [0], engine_runtime: { kind: 'mock' } };


test('the shipped default config validates, with defaults filled in', () => {
  const { config } = loadConfigFile(join(__dirname, '..', '..', 'config', 'llama-orch.yaml'));
  expect(config.pools.map((pool) => pool.id)).toEqual(['smollm2', 'mock']);
  expect(config.pools[0]).toEqual(expect.objectContaining({ engine: 'llamacpp', replicas: 1, model: 'smollm2-135m-instruct-q4_1' }));
  expect(config.pools[0]?.engine_runtime).toEqual(expect.objectContaining({ kind: 'llama-server', slots: 1 }));
  expect(config.models).toEqual([{ ref: 'smollm2-135m-instruct-q4_1', source: { kind: 'pypi-smollm2' } }]);
  expect(Object.isFrozen(config.pools[0])).toBe(true);
});

const llamaServerPool = { ...minimalPool, model: 'tiny', engine_runtime: { kind: 'llama-server' } };

test('issue 3: a llama-server pool names a model catalog entry; defaults fill the runtime, dev override off', () => {
  const { config } = parseConfig({ models: [{ ref: 'tiny', source: { kind: 'file', path: '/m.gguf' }, sha256: 'a'.repeat(64) }], pools: [llamaServerPool] });
  expect(config.pools[0]?.engine_runtime).toEqual(expect.objectContaining({ kind: 'llama-server', slots: 1, extra_args: [], load_timeout_ms: 120_000 }));
  expect(config.dev).toEqual({ allow_cpu_inference: false });
  expect(configProblemsOf({ pools: [llamaServerPool] })).toEqual([`pools[0].model: a llama-server pool's model must name an entry of models[] (no ref "tiny")`]);
});

test('ORCH-3037: a declared sha256 must be 64 lowercase hex digits; model refs are unique', () => {
  const entry = { ref: 'tiny', source: { kind: 'pypi-smollm2' } };
  expect(configProblemsOf({ models: [{ ...entry, sha256: 'ABC' }], pools: [llamaServerPool] })).toEqual(['models[0].sha256: 64 lowercase hex digits']);
  expect(configProblemsOf({ models: [entry, entry], pools: [llamaServerPool] })).toEqual(['models[1].ref: duplicate model ref "tiny"']);
});

test('OC-CONFIG-6002: the spec §8 example pools validate (with our engine_runtime added): every engine they name has an adapter', () => {
  const document = parse(readFileSync(join(__dirname, '__fixtures__', 'spec-example-config.yaml'), 'utf8')) as { pools: { engine: string }[] };
  expect(configProblemsOf(document)).toEqual([]);
  expect(parseConfig(document).config.pools.map((pool) => [pool.id, pool.engine])).toEqual([
    ['llama3-8b-q4-gpu0', 'llamacpp'],
    ['llama3-8b-vllm-gpu1', 'vllm'],
    ['mixtral-tgi-gpu01', 'tgi'],
  ]);
});

test('ORCH-3030: strict mode rejects an unknown field, naming its path', () => {
  expect(configProblemsOf({ pools: [{ ...minimalPool, queue: { capacity: 4, ful_policy: 'reject' } }] })).toEqual([
    'pools[0].queue: unknown field "ful_policy" (strict mode; set mode: compat to ignore)',
  ]);
});

test('ORCH-3030: compat mode ignores unknown fields and reports them', () => {
  const parsed = parseConfig({ mode: 'compat', pools: [{ ...minimalPool, extra: true }] });
  expect(parsed.ignoredFields).toEqual(['pools[0].extra']);
});

test('a bad value names the field and what was expected', () => {
  const problems = configProblemsOf({ pools: [{ ...minimalPool, queue: { full_policy: 'drop-newest' } }] });
  expect(problems).toHaveLength(1);
  expect(problems[0]).toMatch(/^pools\[0\]\.queue\.full_policy: .*reject.*drop-lru.*shed-low-priority/);
});

test('duplicate pool ids and a tensor_split that does not match the devices are refused', () => {
  expect(configProblemsOf({ pools: [minimalPool, minimalPool] })).toEqual(['pools[1].id: duplicate pool id "p1"']);
  expect(configProblemsOf({ pools: [{ ...minimalPool, devices: [0, 1], tensor_split: [1] }] })).toEqual(['pools[0].tensor_split: needs one ratio per device']);
});

test('a file that is not YAML, or missing, fails with the file named', () => {
  const directory = mkdtempSync(join(tmpdir(), 'orch-config-'));
  const path = join(directory, 'bad.yaml');
  writeFileSync(path, 'pools: [\n');
  expect(() => loadConfigFile(path)).toThrow(/invalid config .*bad\.yaml:\n {2}- not valid YAML/);
  expect(() => loadConfigFile(join(directory, 'missing.yaml'))).toThrow(/cannot read file/);
});
