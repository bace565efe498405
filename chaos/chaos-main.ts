import { chaosTargetsMet, formatReport, runChaos, type KillKind } from './stack-kills';

/**
 * `npm run chaos`: SIGKILL each piece of the default stack in turn under streaming load, print the figures,
 * exit 1 when a target is missed. CHAOS_KILLS (20), CHAOS_KINDS (temporal,main), CHAOS_CLIENTS (6),
 * CHAOS_TOKENS (48), CHAOS_INTER_TOKEN_MS (20).
 */
async function main(): Promise<void> {
  const recoveryBoundMs = 60_000;
  const number = (name: string, fallback: number): number => Number(process.env[name] ?? fallback);
  const kinds = (process.env['CHAOS_KINDS'] ?? 'temporal,main').split(',').map((kind): KillKind => {
    const trimmed = kind.trim();
    if (trimmed !== 'temporal' && trimmed !== 'main') throw new Error(`CHAOS_KINDS: unknown kind ${trimmed} (temporal, main)`);
    return trimmed;
  });
  const startedAt = Date.now();
  const report = await runChaos({
    kinds,
    killsPerKind: number('CHAOS_KILLS', 20),
    clients: number('CHAOS_CLIENTS', 6),
    tokens: number('CHAOS_TOKENS', 48),
    interTokenMs: number('CHAOS_INTER_TOKEN_MS', 20),
    slots: 4,
    recoveryBoundMs,
    log: (line) => process.stderr.write(`[chaos] ${line}\n`),
  });
  process.stdout.write(`\n${formatReport(report)}\nwall time ${Math.round((Date.now() - startedAt) / 1000)} s\n`);
  const misses = chaosTargetsMet(report, recoveryBoundMs);
  if (misses.length > 0) {
    process.stdout.write(`TARGETS MISSED:\n${misses.map((miss) => `  - ${miss}`).join('\n')}\n`);
    process.exit(1);
  }
  process.stdout.write('targets met: 0 lost, 0 duplicated or wrong, every stream resumed, nothing left running\n');
}

main().catch((error: unknown) => {
  process.stderr.write(`chaos run failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
