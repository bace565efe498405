import type { Agent} from 'undici';
import { request } from 'undici';
import { ensureTemporalBinary } from '../cli/temporal-binary';
import { startDevServer, type DevServer } from '../cli/temporal-dev-server';

/** TEMPORAL_ADDRESS when set, else a fresh dev server (file-backed as `npm start` runs it; BENCH_TEMPORAL_IN_MEMORY=1 for memory). */
export async function benchTemporal(workDir: string): Promise<{ address: string; devServer: DevServer | undefined }> {
  const existing = process.env['TEMPORAL_ADDRESS'];
  if (existing) return { address: existing, devServer: undefined };
  const devServer = await startDevServer({
    binary: await ensureTemporalBinary(),
    dataDir: workDir,
    port: 0,
    uiPort: undefined,
    namespace: 'default',
    persist: process.env['BENCH_TEMPORAL_IN_MEMORY'] !== '1',
  });
  return { address: devServer.address, devServer };
}

/** Waits until the pool reports a Ready replica through the gateway (auth off in benchmark configs). */
export async function waitForPool(apiUrl: string, dispatcher: Agent, poolId: string): Promise<void> {
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    try {
      const response = await request(`${apiUrl}/v1/pools/${poolId}/health`, { dispatcher });
      const health = (await response.body.json()) as { ready?: boolean };
      if (health.ready) return;
    } catch {
      // not up yet
    }
    await new Promise((resolveDelay) => setTimeout(resolveDelay, 250));
  }
  throw new Error(`pool ${poolId} did not become ready`);
}
