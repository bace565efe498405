import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { terminateChild } from '../platform/child-process';

/** Starts a node script and resolves with the first stdout line that parses as `{"event":"listening","url":…}`. */
export function startListeningProcess(script: string, args: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'inherit'], env });
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout });
    child.once('exit', (code) => reject(new Error(`${script} exited with ${code}`)));
    lines.on('line', (line) => {
      try {
        const parsed = JSON.parse(line) as { event?: string; url?: string };
        if (parsed.event === 'listening' && parsed.url) resolve({ child, url: parsed.url });
      } catch {
        // not the announcement line
      }
    });
  });
}

export function stopProcess(child: ChildProcess | undefined): Promise<void> {
  return child ? terminateChild(child, 10_000) : Promise.resolve();
}
