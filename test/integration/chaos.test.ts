import { chaosTargetsMet, formatReport, runChaos } from '../../chaos/stack-kills';

/**
 * The short form of `npm run chaos` (issues 15 and 13): one SIGKILL of each piece under streaming load —
 * the embedded Temporal server, the pool worker and npm start itself on the default stack; a gateway
 * process and the workflow worker on a stack that runs them apart. The full run does 20 of each.
 */
test('ORCH-3051 issue 13: Temporal server, pool worker, gateway process, workflow worker and npm start each SIGKILLed under streaming load — no task lost, no token duplicated, out of order or wrong, every dropped stream resumed (live after a gateway death), nothing left running', async () => {
  const report = await runChaos({
    kinds: ['temporal', 'pool-worker', 'gateway', 'workflow-worker', 'main'],
    engine: 'mock',
    killsPerKind: 1,
    clients: 3,
    tokens: 24,
    interTokenMs: 20,
    slots: 4,
    recoveryBoundMs: 60_000,
    log: () => undefined,
  });
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
  // A gateway's death drops the streams it held; they went on live on the other one.
  const gateway = report.kinds.find((figures) => figures.kind === 'gateway');
  expect(gateway?.streamsInterrupted).toBeGreaterThan(0);
  expect(gateway?.streamsResumedLive).toBeGreaterThan(0);
}, 360_000);
