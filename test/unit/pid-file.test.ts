import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { PidFile } from '../../platform/pid-file';

/** Stands in for llama-server: a long-lived process whose argv[0] is known. */
const SLEEP = process.execPath;
const logger = pino({ level: 'silent' });
const children: ChildProcess[] = [];
afterAll(() => {
  for (const child of children) child.kill('SIGKILL');
});

function startEngineStandIn(): ChildProcess & { pid: number } {
  const child = spawn(SLEEP, ['-e', 'setTimeout(() => undefined, 60_000)'], { stdio: 'ignore' });
  children.push(child);
  if (child.pid === undefined) throw new Error('could not start the stand-in process');
  return child as ChildProcess & { pid: number };
}

function exited(child: ChildProcess): Promise<NodeJS.Signals | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.signalCode);
  return new Promise((resolve) => child.once('exit', (_code, signal) => resolve(signal)));
}

const pidPath = (): string => join(mkdtempSync(join(tmpdir(), 'llama-orch-pid-')), 'run', 'p-r0.llama-server.json');

test('a SIGKILLed pool worker\'s engine is stopped by the next pool worker of the replica before it starts its own', async () => {
  const path = pidPath();
  const orphan = startEngineStandIn();
  new PidFile(path, logger).record(orphan.pid, SLEEP);
  // The next pool worker process: a fresh PidFile on the same path.
  await expect(new PidFile(path, logger).reapOrphan()).resolves.toBe(orphan.pid);
  await expect(exited(orphan)).resolves.toBe('SIGKILL');
  expect(existsSync(path)).toBe(false);
});

test('a recorded pid that now runs another program is never killed, and the stale record is dropped', async () => {
  const path = pidPath();
  const other = startEngineStandIn();
  new PidFile(path, logger).record(other.pid, '/opt/llama-server/bin/llama-server');
  await expect(new PidFile(path, logger).reapOrphan()).resolves.toBeUndefined();
  expect(other.exitCode).toBeNull();
  expect(other.signalCode).toBeNull();
  expect(existsSync(path)).toBe(false);
});

test('an engine that exited clears its own record; a newer record is left alone', () => {
  const path = pidPath();
  const file = new PidFile(path, logger);
  file.record(1234, SLEEP);
  file.record(5678, SLEEP);
  file.clear(1234);
  expect(existsSync(path)).toBe(true);
  file.clear(5678);
  expect(existsSync(path)).toBe(false);
});
