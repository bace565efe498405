import type { ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** The node flags that let `liveHeapBytes` ask a child for a heap snapshot. */
export function heapSnapshotFlags(directory: string): string[] {
  return ['--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${directory}`];
}

/**
 * The child's live JS heap: V8 runs a full GC before it writes a heap snapshot, so the sum of the
 * snapshot's node sizes is what is really retained, unlike RSS, which also holds garbage not yet
 * collected and heap the allocator keeps. The child must run with `heapSnapshotFlags(directory)`.
 */
export async function liveHeapBytes(child: ChildProcess, directory: string): Promise<number> {
  const before = new Set(snapshotFiles(directory));
  child.kill('SIGUSR2');
  const path = await waitForWrittenFile(directory, before);
  try {
    const snapshot = JSON.parse(readFileSync(path, 'utf8')) as { snapshot: { meta: { node_fields: string[] } }; nodes: number[] };
    const fields = snapshot.snapshot.meta.node_fields;
    const selfSize = fields.indexOf('self_size');
    let total = 0;
    for (let index = selfSize; index < snapshot.nodes.length; index += fields.length) total += snapshot.nodes[index] ?? 0;
    return total;
  } finally {
    rmSync(path, { force: true });
  }
}

function snapshotFiles(directory: string): string[] {
  return readdirSync(directory).filter((name) => name.endsWith('.heapsnapshot'));
}

/** The new snapshot file, once its size has stopped changing (the child writes it in one go). */
async function waitForWrittenFile(directory: string, before: ReadonlySet<string>): Promise<string> {
  const deadline = Date.now() + 120_000;
  let lastSize = -1;
  while (Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 500));
    const name = snapshotFiles(directory).find((candidate) => !before.has(candidate));
    if (name === undefined) continue;
    const path = join(directory, name);
    const size = statSync(path).size;
    if (size > 0 && size === lastSize) return path;
    lastSize = size;
  }
  throw new Error('no heap snapshot was written');
}
