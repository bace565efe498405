/**
 * Per-call latency of a policy decision: the example WASI plugin (max-tokens-cap) against the
 * built-in native policy, side by side in one run over the same realistic snapshots. Both go
 * through the same PolicyHost API (snapshot validation included); the plugin's figure also
 * includes the structured clone to its worker thread and back. Target: p99 <= 1 ms per plugin
 * decision. Run: npm run bench:policy [-- --calls 20000]
 */
import { performance } from 'node:perf_hooks';
import { admitSnapshot, placeSnapshot } from '../policy/examples/sample-snapshots';
import type { PolicyHost, PolicyLogger } from '../policy/host/policy-host';
import { createPolicyHost } from '../policy/host/policy-host';
import { buildExamplePlugin } from '../policy/tools/build-plugin';

const silent: PolicyLogger = { info: () => undefined, warn: () => undefined, error: () => undefined };

function argument(name: string, fallback: number): number {
  const index = process.argv.indexOf(`--${name}`);
  const value = index >= 0 ? Number(process.argv[index + 1]) : fallback;
  return Number.isFinite(value) && value > 0 ? value : fallback;
}

function percentile(sorted: readonly number[], fraction: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * fraction))] ?? Number.NaN;
}

interface Series {
  readonly samples: number[];
}

async function main(): Promise<void> {
  const calls = argument('calls', 20_000);
  const warmup = Math.min(2_000, calls);
  const pluginPath = await buildExamplePlugin();
  const startedAt = performance.now();
  const plugin = await createPolicyHost({ id: 'max-tokens-cap', version: 'bench', path: pluginPath }, silent);
  const startupMs = performance.now() - startedAt;
  const native = await createPolicyHost(undefined, silent);

  // Alternate accept and reject requests so both decision paths are measured.
  const admitSnapshots = [admitSnapshot({}, { maxTokens: 512 }), admitSnapshot({}, { maxTokens: 4096 })];
  const place = placeSnapshot();
  const series: Record<string, Series> = {};
  const record = (name: string, ms: number): void => {
    (series[name] ??= { samples: [] }).samples.push(ms);
  };
  const hosts: [string, PolicyHost][] = [
    ['native', native],
    ['plugin', plugin],
  ];

  for (let call = 0; call < warmup + calls; call += 1) {
    const measured = call >= warmup;
    const snapshot = admitSnapshots[call % 2] ?? admitSnapshots[0]!;
    // Interleaved, so both policies see the same machine state (GC, frequency, noise).
    for (const [name, host] of hosts) {
      let started = performance.now();
      const admitted = await host.admit(snapshot);
      if (measured) record(`admit ${name}`, performance.now() - started);
      started = performance.now();
      const placed = await host.place(place);
      if (measured) record(`place ${name}`, performance.now() - started);
      if (admitted.decidedBy.kind === 'builtin-fallback' || placed.decidedBy.kind === 'builtin-fallback') {
        throw new Error(`the plugin fell back during the benchmark: ${JSON.stringify(admitted.decidedBy)}`);
      }
    }
  }
  await plugin.close();
  await native.close();

  const rows = Object.entries(series).map(([name, { samples }]) => {
    const sorted = [...samples].sort((a, b) => a - b);
    return { name, p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99), max: sorted[sorted.length - 1] ?? Number.NaN };
  });
  const find = (name: string) => rows.find((row) => row.name === name);
  const us = (ms: number): string => `${(ms * 1000).toFixed(1)} µs`.padStart(11);

  process.stdout.write(
    `policy decision latency — ${calls} calls each after ${warmup} warm-up, Node ${process.version}, ` +
      `${pluginPath.split('/').pop()} (plugin start-up ${startupMs.toFixed(0)} ms)\n`,
  );
  process.stdout.write(`${'series'.padEnd(14)}${'p50'.padStart(11)}${'p99'.padStart(11)}${'max'.padStart(11)}\n`);
  for (const row of rows) process.stdout.write(`${row.name.padEnd(14)}${us(row.p50)}${us(row.p99)}${us(row.max)}\n`);
  for (const fn of ['admit', 'place']) {
    const pluginRow = find(`${fn} plugin`);
    const nativeRow = find(`${fn} native`);
    if (pluginRow === undefined || nativeRow === undefined) continue;
    const verdict = pluginRow.p99 <= 1 ? 'within' : 'OVER';
    process.stdout.write(
      `${fn}: plugin/native p50 x${(pluginRow.p50 / nativeRow.p50).toFixed(1)}, p99 x${(pluginRow.p99 / nativeRow.p99).toFixed(1)}; ` +
        `plugin p99 ${verdict} the 1 ms target\n`,
    );
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
});
