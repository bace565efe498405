import { chaosTargetsMet, formatReport, KILL_KINDS, runChaos, type KillKind } from './stack-kills';

/**
 * `npm run chaos`: SIGKILL each piece of the default stack in turn under streaming load, print the figures,
 * exit 1 when a target is missed. Gateway and workflow-worker kills run on a second stack with those in
 * processes of their own (two gateways, one workflow worker). CHAOS_ENGINE (mock, or llama: the tiny real model, which adds the
 * engine kill), CHAOS_KILLS (20), CHAOS_KINDS (every kind the engine allows), CHAOS_CLIENTS (6),
 * CHAOS_TOKENS (48 mock, 24 llama), CHAOS_INTER_TOKEN_MS (20, mock), CHAOS_SLOTS (4 mock, 1 llama: its
 * deterministic profile, so a retried task regenerates the same tokens).
 */
async function main(): Promise<void> {
  const recoveryBoundMs = 60_000;
  const number = (name: string, fallback: number): number => Number(process.env[name] ?? fallback);
  const engine = process.env['CHAOS_ENGINE'] === 'llama' ? 'llama' : 'mock';
  const defaultKinds = KILL_KINDS.filter((kind) => kind !== 'engine' || engine === 'llama');
  const kinds = (process.env['CHAOS_KINDS']?.split(',') ?? defaultKinds).map((kind): KillKind => {
    const known = KILL_KINDS.find((candidate) => candidate === kind.trim());
    if (!known) throw new Error(`CHAOS_KINDS: unknown kind ${kind} (${KILL_KINDS.join(', ')})`);
    return known;
  });
  const startedAt = Date.now();
  const report = await runChaos({
    kinds,
    killsPerKind: number('CHAOS_KILLS', 20),
    clients: number('CHAOS_CLIENTS', 6),
    engine,
    tokens: number('CHAOS_TOKENS', engine === 'llama' ? 24 : 48),
    interTokenMs: number('CHAOS_INTER_TOKEN_MS', 20),
    slots: number('CHAOS_SLOTS', engine === 'llama' ? 1 : 4),
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
