import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';
import type { TestStack } from './stack';

const POOL_WORKER_MAIN = resolve(__dirname, '..', '..', 'dist', 'gpu-workers', 'pool-worker-main.js');

/**
 * One replica of the stack's pool as its own pool-worker process (built `dist/`), as `npm start` runs it:
 * chaos tests SIGKILL it, which an in-process replica cannot stand in for.
 */
export function startReplicaProcess(stack: Pick<TestStack, 'config' | 'poolId' | 'temporalAddress' | 'internalToken'>, replicaIndex: number): ChildProcess {
  const directory = mkdtempSync(join(tmpdir(), 'llama-orch-replica-'));
  const configPath = join(directory, 'config.yaml');
  writeFileSync(configPath, stringify(JSON.parse(JSON.stringify(stack.config))));
  return spawn(process.execPath, [POOL_WORKER_MAIN, '--config', configPath, '--pool', stack.poolId, '--replica', String(replicaIndex)], {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, TEMPORAL_ADDRESS: stack.temporalAddress, ORCH_INTERNAL_TOKEN: stack.internalToken, LOG_LEVEL: 'warn' },
  });
}
