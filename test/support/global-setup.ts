import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureTemporalBinary } from '../../cli/temporal-binary';
import { startDevServer, type DevServer } from '../../cli/temporal-dev-server';
import { buildWorkflowBundle } from '../../workflows/workflow-worker';

declare global {
  var __orchTestTemporal: DevServer | undefined;
}

/**
 * One real Temporal dev server per test run (started before the suites, as Temporal's own CI does), and
 * one workflow bundle shared by every worker the tests create. ORCH_TEST_NO_TEMPORAL=1 is for running a
 * few unit files quickly by hand; the integration suites fail without a server, never skip.
 */
export default async function globalSetup(): Promise<void> {
  if (process.env['ORCH_TEST_NO_TEMPORAL'] === '1') return;
  const workDir = mkdtempSync(join(tmpdir(), 'llama-orch-test-'));
  const binary = await ensureTemporalBinary();
  const server = await startDevServer({ binary, dataDir: workDir, port: 0, uiPort: undefined, namespace: 'default', persist: false });
  globalThis.__orchTestTemporal = server;
  const bundlePath = join(workDir, 'workflow-bundle.js');
  writeFileSync(bundlePath, (await buildWorkflowBundle()).code);
  process.env['ORCH_TEST_TEMPORAL_ADDRESS'] = server.address;
  process.env['ORCH_TEST_WORKFLOW_BUNDLE'] = bundlePath;
}
