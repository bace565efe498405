import { readdirSync, readFileSync } from 'node:fs';

/**
 * CPU time by process group on this machine, read from /proc: what bounds a figure on a shared 2-core box
 * is usually which process ate the cores, so benchmarks print it beside their latencies. Groups go by
 * command line; a process that matches none counts as `other`.
 */
const GROUPS: readonly (readonly [string, RegExp])[] = [
  ['temporal', /temporal server start-dev|temporal-server|postgres/],
  ['engine', /mock-engine-main|llama-server/],
  ['pool worker', /pool-worker-main/],
  ['gateway', /cli\/start\.js|gateway-worker-main|gateway-main/],
  ['litellm', /litellm/],
];

const TICK_MS = 10;

export type CpuSnapshot = ReadonlyMap<string, number>;

/** CPU ms so far per group; this process is `bench client`. */
export function cpuSnapshot(): CpuSnapshot {
  const totals = new Map<string, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const fields = readFileSync(`/proc/${entry}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
      const cpuMs = (Number(fields[11] ?? 0) + Number(fields[12] ?? 0)) * TICK_MS;
      if (cpuMs === 0) continue;
      const group = Number(entry) === process.pid ? 'bench client' : groupOf(readFileSync(`/proc/${entry}/cmdline`, 'utf8').replace(/\0/g, ' '));
      totals.set(group, (totals.get(group) ?? 0) + cpuMs);
    } catch {
      // the process ended while we read it
    }
  }
  return totals;
}

/** CPU ms each group used between two snapshots (processes that ended in between are missed). */
export function cpuBetween(before: CpuSnapshot, after: CpuSnapshot): Map<string, number> {
  const used = new Map<string, number>();
  for (const [group, ms] of after) used.set(group, Math.max(0, ms - (before.get(group) ?? 0)));
  return used;
}

export function addCpu(into: Map<string, number>, used: ReadonlyMap<string, number>): void {
  for (const [group, ms] of used) into.set(group, (into.get(group) ?? 0) + ms);
}

/** `gateway 1.2 · temporal 3.4 · …` ms per task, largest first, groups under 0.05 ms left out. */
export function formatCpuPerTask(used: ReadonlyMap<string, number>, tasks: number): string {
  return [...used]
    .map(([group, ms]) => [group, ms / Math.max(1, tasks)] as const)
    .filter(([, perTask]) => perTask >= 0.05)
    .sort((left, right) => right[1] - left[1])
    .map(([group, perTask]) => `${group} ${perTask.toFixed(1)}`)
    .join(' · ');
}

function groupOf(commandLine: string): string {
  for (const [group, pattern] of GROUPS) if (pattern.test(commandLine)) return group;
  return 'other';
}
