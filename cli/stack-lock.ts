import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** What a running `npm start` records in its data dir, so a second one can say where it is. */
interface StackLockRecord {
  readonly pid: number;
  readonly api_url: string;
  readonly started_at: string;
}

export interface StackLock {
  release(): void;
}

/**
 * One stack per data directory (issue 15 item 3): `npm start` takes `<data_dir>/run/stack.lock` before it
 * starts anything. A lock whose process is alive refuses the start with that stack's address; one whose
 * process is gone (a crash, a SIGKILL) is taken over.
 */
export function takeStackLock(dataDir: string, apiUrl: string): StackLock {
  const runDir = join(dataDir, 'run');
  mkdirSync(runDir, { recursive: true });
  const path = join(runDir, 'stack.lock');
  const record: StackLockRecord = { pid: process.pid, api_url: apiUrl, started_at: new Date().toISOString() };
  for (let attempt = 0; attempt < 2; attempt += 1) {
    try {
      writeFileSync(path, JSON.stringify(record), { flag: 'wx' });
      return { release: () => releaseIfOurs(path) };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const holder = readRecord(path);
    if (holder && holder.pid !== process.pid && isAlive(holder.pid)) {
      throw new Error(`llama-orch is already running on data dir ${dataDir} (pid ${holder.pid}, API ${holder.api_url}, since ${holder.started_at}); stop it first, or give this one another data_dir`);
    }
    // Left by a stack that died without cleaning up: take it over.
    rmSync(path, { force: true });
  }
  throw new Error(`could not take ${path}: another start is racing for it`);
}

function readRecord(path: string): StackLockRecord | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as StackLockRecord;
  } catch {
    return undefined;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function releaseIfOurs(path: string): void {
  if (readRecord(path)?.pid === process.pid) rmSync(path, { force: true });
}
