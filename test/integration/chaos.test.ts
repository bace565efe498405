import { chaosTargetsMet, formatReport, runChaos } from '../../chaos/stack-kills';

/**
 * The short form of `npm run chaos` (issue 15 item 7): one SIGKILL of the embedded Temporal server and one
 * of npm start itself under streaming load, on the default stack. The full run does 20 of each.
 */
test('issue 15: Temporal server, pool worker and npm start each SIGKILLed under streaming load — no task lost, no token duplicated, out of order or wrong, every dropped stream resumed, nothing left running', async () => {
  const report = await runChaos({ kinds: ['temporal', 'pool-worker', 'main'], engine: 'mock', killsPerKind: 1, clients: 3, tokens: 24, interTokenMs: 20, slots: 4, recoveryBoundMs: 60_000, log: () => undefined });
  process.stderr.write(`${formatReport(report)}\n`);
  expect(chaosTargetsMet(report, 60_000)).toEqual([]);
  for (const figures of report.kinds) {
    expect(figures.kills).toBe(1);
    // The kill happened under load: tasks were in flight and every one of them ended.
    expect(figures.accepted).toBeGreaterThan(0);
    expect(figures.ended).toBe(figures.accepted);
  }
  // npm start's death drops every open stream; each was resumed on the restarted gateway.
  expect(report.kinds.find((figures) => figures.kind === 'main')?.streamsInterrupted).toBeGreaterThan(0);
}, 240_000);
