import { configProblemsOf } from '../support/config-problems';
import { taskDeterminism } from '../../core/determinism';

const models = [{ ref: 'tiny', source: { kind: 'file', path: '/m.gguf' }, sha256: 'a'.repeat(64) }];
const llamaServerPool = (runtime: Record<string, unknown>, pool: Record<string, unknown> = {}) => ({
  id: 'p1',
  engine: 'llamacpp',
  model: 'tiny',
  devices: [0],
  engine_runtime: { kind: 'llama-server', ...runtime },
  ...pool,
});


describe('ORCH-3045: deterministic outputs are the default, and a pool that cannot give them says so', () => {
  test('a llama-server pool of several slots (shared batches) is refused unless it declares determinism: best_effort', () => {
    expect(configProblemsOf({ models, pools: [llamaServerPool({ slots: 2 })] })).toEqual([
      "pools[0].engine_runtime.slots: llama-server decodes the requests of its 2 slots in shared batches, so a task's tokens depend on what runs beside it " +
        '(strict determinism, ORCH-3045, does not hold): use slots: 1, or declare determinism: best_effort on this pool',
    ]);
    expect(configProblemsOf({ models, pools: [llamaServerPool({ slots: 2 }, { determinism: 'strict' })] })).toHaveLength(1);
    expect(configProblemsOf({ models, pools: [llamaServerPool({ slots: 2 }, { determinism: 'best_effort' })] })).toEqual([]);
    // One slot is the deterministic profile (--no-cont-batching, --cache-ram 0); the mock is deterministic by construction.
    expect(configProblemsOf({ models, pools: [llamaServerPool({ slots: 1 })] })).toEqual([]);
    expect(configProblemsOf({ pools: [{ id: 'm', engine: 'llamacpp', model: 'mock:x', devices: [0], engine_runtime: { kind: 'mock', slots: 4 } }] })).toEqual([]);
  });

  test('a task runs with its own determinism, else the pool\'s (strict when the pool says nothing); strict on a best_effort pool is refused', () => {
    expect(taskDeterminism({ id: 'p' }, undefined, 'llamacpp')).toBe('strict');
    expect(taskDeterminism({ id: 'p', determinism: null }, 'best_effort', 'llamacpp')).toBe('best_effort');
    expect(taskDeterminism({ id: 'p', determinism: 'best_effort' }, undefined, 'llamacpp')).toBe('best_effort');
    expect(taskDeterminism({ id: 'p', determinism: 'best_effort' }, 'best_effort', 'llamacpp')).toBe('best_effort');
    let refusal: unknown;
    try {
      taskDeterminism({ id: 'p', determinism: 'best_effort' }, 'strict', 'llamacpp');
    } catch (error) {
      refusal = error;
    }
    expect(refusal).toMatchObject({ code: 'INVALID_PARAMS', details: { poolId: 'p', engine: 'llamacpp' } });
    expect(String((refusal as Error).message)).toContain('pool p serves determinism best_effort');
  });

  test('a pool of an engine that claims no determinism (TGI) serves best_effort by default: a strict task is refused, an explicit strict posture is refused in config', () => {
    const tgiPool = { id: 't', engine: 'tgi' as const };
    expect(taskDeterminism(tgiPool, undefined, 'tgi')).toBe('best_effort');
    expect(() => taskDeterminism(tgiPool, 'strict', 'tgi')).toThrow('pool t serves determinism best_effort');
    const configured = { id: 't', engine: 'tgi', model: 'm', devices: [0], engine_runtime: { kind: 'external', url: 'http://127.0.0.1:3000' } };
    expect(configProblemsOf({ pools: [configured] })).toEqual([]);
    expect(configProblemsOf({ pools: [{ ...configured, determinism: 'strict' }] })).toEqual([
      'pools[0].determinism: the tgi adapter makes no determinism claim (nothing measured holds), so its pools serve best_effort: drop determinism: strict',
    ]);
  });
});
