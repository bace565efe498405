import { ENGINES, ENGINES_WITH_ADAPTER, ENGINES_WITH_TEST_DOUBLE, ENGINES_WITHOUT_DETERMINISM } from '../../core/engines';
import { engineRegistration, registeredEngines } from '../../gpu-workers/engines/engine-registry';
import { configProblemsOf } from '../support/config-problems';

/**
 * Issue 12, the seam (ORCH-3054): one registry keyed by engine; config's lists of engines agree with it, and
 * each adapter's declared capabilities match the members it has, since shared code reads the declarations.
 */
describe('ORCH-3054: the engine adapter registry', () => {
  test('config accepts exactly the engines the registry has adapters for, and the mock runtime exactly those with a test double', () => {
    expect([...registeredEngines()].sort()).toEqual([...ENGINES_WITH_ADAPTER].sort());
    const withDouble = ENGINES.filter((engine) => ENGINES_WITH_ADAPTER.includes(engine) && engineRegistration(engine).testDouble !== undefined);
    expect(withDouble.sort()).toEqual([...ENGINES_WITH_TEST_DOUBLE].sort());
  });

  test.each([...ENGINES_WITH_ADAPTER])('the %s adapter speaks for its own engine, version 2 of the contract, and declares what it can do', (engine) => {
    const adapter = engineRegistration(engine).createAdapter('http://127.0.0.1:9');
    try {
      expect(adapter.engine).toBe(engine);
      expect(adapter.specificationVersion).toBe('v2');
      // Sessions pin a slot and reuse its cache: a prompt cache without pinning could never be hit.
      if (adapter.capabilities.promptCache) expect(adapter.capabilities.slotPinning).toBe(true);
      // A slot can only be erased by an engine that lists its slots.
      if (adapter.slotControl?.erase) expect(typeof adapter.slotControl.list).toBe('function');
    } finally {
      void adapter.close();
    }
  });

  test('ORCH-3045: config\'s list of engines without a determinism claim is exactly the adapters that declare none', () => {
    const declaringNone = ENGINES_WITH_ADAPTER.filter((engine) => {
      const adapter = engineRegistration(engine).createAdapter('http://127.0.0.1:9');
      void adapter.close();
      return adapter.capabilities.determinism === 'none';
    });
    expect([...declaringNone].sort()).toEqual([...ENGINES_WITHOUT_DETERMINISM].sort());
  });

  test('an engine with no adapter has no registration (config refuses it before a pool worker would ask)', () => {
    for (const engine of ENGINES.filter((candidate) => !ENGINES_WITH_ADAPTER.includes(candidate))) {
      expect(() => engineRegistration(engine)).toThrow(`no adapter is registered for engine "${engine}"`);
    }
  });
});

describe('OC-CONFIG-6002: how an engine is obtained is checked against which engine it is', () => {
  const base = { id: 'p1', model: 'tiny', devices: [0] };
  const models = [{ ref: 'tiny', source: { kind: 'file', path: '/m.gguf' }, sha256: 'a'.repeat(64) }];

  test('a spawned llama-server runs llama.cpp, so a pool of another engine naming it is refused at the runtime kind', () => {
    const problems = configProblemsOf({ models, pools: [{ ...base, engine: 'vllm', engine_runtime: { kind: 'llama-server' } }] });
    expect(problems).toContain('pools[0].engine_runtime.kind: the llama-server runtime runs llamacpp, not vllm; use a runtime for vllm or kind: external');
  });

  test('external works for any engine with an adapter; the mock only for an engine with a test double', () => {
    expect(configProblemsOf({ models, pools: [{ ...base, engine: 'llamacpp', engine_runtime: { kind: 'external', url: 'http://127.0.0.1:8080' } }] })).toEqual([]);
    expect(configProblemsOf({ models, pools: [{ ...base, engine: 'llamacpp', engine_runtime: { kind: 'mock' } }] })).toEqual([]);
  });
});
