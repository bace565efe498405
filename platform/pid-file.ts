import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';

/** How long a killed orphan may take to go away before the new engine starts anyway. */
const REAP_WAIT_MS = 5_000;

interface PidRecord {
  readonly pid: number;
  readonly binary: string;
}

/**
 * Where a process records the id of a child it started, so that whoever starts next finds what a killed
 * predecessor left: a replica's llama-server (it keeps the port, the RAM and the VRAM the next start
 * needs), or a child of `npm start` (cli/supervision/). A pid is only killed while it still runs the
 * recorded binary (/proc/<pid>/cmdline), so a reused pid is never hit.
 */
export class PidFile {
  constructor(
    private readonly path: string,
    private readonly logger: Logger,
  ) {}

  /** Kills the process a predecessor left running; resolves with its pid, if any. */
  async reapOrphan(): Promise<number | undefined> {
    const record = this.read();
    if (record === undefined) return undefined;
    if (!runsBinary(record.pid, record.binary)) {
      rmSync(this.path, { force: true });
      return undefined;
    }
    this.logger.warn({ pid: record.pid, binary: record.binary, pid_file: this.path }, 'stopping a process a previous run left behind');
    try {
      process.kill(record.pid, 'SIGKILL');
    } catch {
      // Gone between the check and the kill: nothing left to do.
    }
    const deadline = Date.now() + REAP_WAIT_MS;
    while (runsBinary(record.pid, record.binary) && Date.now() < deadline) await sleep(50);
    rmSync(this.path, { force: true });
    return record.pid;
  }

  record(pid: number, binary: string): void {
    mkdirSync(dirname(this.path), { recursive: true });
    writeFileSync(this.path, JSON.stringify({ pid, binary } satisfies PidRecord));
  }

  /** Forgets `pid` once it has exited (a newer record is left alone). */
  clear(pid: number): void {
    if (this.read()?.pid === pid) rmSync(this.path, { force: true });
  }

  private read(): PidRecord | undefined {
    try {
      const parsed: unknown = JSON.parse(readFileSync(this.path, 'utf8'));
      if (typeof parsed !== 'object' || parsed === null) return undefined;
      const { pid, binary } = parsed as Record<string, unknown>;
      return typeof pid === 'number' && Number.isInteger(pid) && pid > 0 && typeof binary === 'string' ? { pid, binary } : undefined;
    } catch {
      return undefined;
    }
  }
}

/** True while `pid` is alive and was started from `binary` (its argv[0]); false where /proc cannot tell. */
function runsBinary(pid: number, binary: string): boolean {
  try {
    const argv0 = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0];
    const state = /^State:\s+(\S)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    // A zombie has exited already; only its parent's wait is missing.
    return argv0 === binary && state !== 'Z';
  } catch {
    return false;
  }
}
