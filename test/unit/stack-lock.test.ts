import { mkdtempSync, readFileSync, writeFileSync, mkdirSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { takeStackLock } from '../../cli/stack-lock';

/** One stack per data dir (issue 15 item 3): cli/stack-lock.ts. */
describe('the data dir lock of npm start', () => {
  it('a live holder refuses a second start with its pid and address', () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'llama-orch-lock-'));
    mkdirSync(join(dataDir, 'run'), { recursive: true });
    // Another live process (this test's parent) holds it.
    writeFileSync(join(dataDir, 'run', 'stack.lock'), JSON.stringify({ pid: process.ppid, api_url: 'http://127.0.0.1:8080', started_at: 'then' }));
    expect(() => takeStackLock(dataDir, 'http://127.0.0.1:9090')).toThrow(`already running on data dir ${dataDir} (pid ${process.ppid}, API http://127.0.0.1:8080`);
  });

  it('a lock left by a dead process is taken over; the new holder releases only its own lock', () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'llama-orch-lock-'));
    mkdirSync(join(dataDir, 'run'), { recursive: true });
    const path = join(dataDir, 'run', 'stack.lock');
    // Pid numbers past the kernel's pid_max are never alive.
    writeFileSync(path, JSON.stringify({ pid: 2 ** 30, api_url: 'http://127.0.0.1:8080', started_at: 'then' }));
    const lock = takeStackLock(dataDir, 'http://127.0.0.1:9090');
    expect(JSON.parse(readFileSync(path, 'utf8'))).toEqual(expect.objectContaining({ pid: process.pid, api_url: 'http://127.0.0.1:9090' }));
    lock.release();
    expect(existsSync(path)).toBe(false);
  });
});
