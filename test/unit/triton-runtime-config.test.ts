import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../../core/config';
import { removeStaleWorkdirs, tritonLaunchScript } from '../../gpu-workers/pool-manager/triton-server-process';
import { configProblemsOf } from '../support/config-problems';

/** The triton-server runtime (issue 12 item 3): a spawned Triton over a llama-server on a catalog model. */
describe('OC-CONFIG-6002: the triton-server runtime', () => {
  const models = [{ ref: 'tiny', source: { kind: 'file', path: '/m.gguf' }, sha256: 'a'.repeat(64) }];
  const pool = { id: 't', engine: 'triton', model: 'tiny', devices: [0], engine_runtime: { kind: 'triton-server' } };

  test('a Triton pool parses with the llama-server fields and a Triton model name (default llm)', () => {
    const runtime = parseConfig({ models, pools: [pool] }).config.pools[0]?.engine_runtime;
    expect(runtime).toMatchObject({ kind: 'triton-server', model_name: 'llm', slots: 1, extra_args: [], load_timeout_ms: 120_000 });
  });

  test('it runs Triton: a pool of another engine naming it is refused at the runtime kind, and a bad model name at its field', () => {
    expect(configProblemsOf({ models, pools: [{ ...pool, engine: 'llamacpp' }] })).toEqual([
      'pools[0].engine_runtime.kind: the triton-server runtime runs triton, not llamacpp; use a runtime for llamacpp or kind: external',
    ]);
    expect(configProblemsOf({ models, pools: [{ ...pool, engine_runtime: { kind: 'triton-server', model_name: '../x' } }] })[0]).toMatch(/^pools\[0\]\.engine_runtime\.model_name: /);
  });

  test('ORCH-3045: as for llama-server, its model must be in the catalog, and more than one slot needs best_effort determinism', () => {
    expect(configProblemsOf({ models, pools: [{ ...pool, model: 'other' }] })).toEqual([`pools[0].model: a triton-server pool's model must name an entry of models[] (no ref "other")`]);
    expect(configProblemsOf({ models, pools: [{ ...pool, engine_runtime: { kind: 'triton-server', slots: 2 } }] })[0]).toMatch(/^pools\[0\]\.engine_runtime\.slots: .*best_effort/);
  });

  test('the launch script is found from the sources (and, by the same walk up, from dist/)', () => {
    expect(existsSync(tritonLaunchScript())).toBe(true);
  });

  test('a work directory left by a server that is gone is removed at the next start; a live server\'s, or a start in progress, is kept', () => {
    const parent = mkdtempSync(join(tmpdir(), 'triton-workdirs-'));
    const directory = (name: string, pid?: number): string => {
      const path = join(parent, `llama-orch-tritonserver-wd-${name}`);
      mkdirSync(path);
      if (pid !== undefined) writeFileSync(join(path, 'server.pid'), String(pid));
      return path;
    };
    const exited = spawnSync('true').pid;
    const dead = directory('dead', exited);
    const live = directory('live', process.pid);
    const starting = directory('starting');
    const abandoned = directory('abandoned');
    const hourAgo = new Date(Date.now() - 3_600_000);
    utimesSync(abandoned, hourAgo, hourAgo);
    removeStaleWorkdirs(parent);
    expect([existsSync(dead), existsSync(live), existsSync(starting), existsSync(abandoned)]).toEqual([false, true, true, false]);
    rmSync(parent, { recursive: true, force: true });
  });
});
