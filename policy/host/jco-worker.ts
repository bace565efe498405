/**
 * Runs jco (an ES module with top-level await, which CommonJS code cannot `require`) in a worker
 * thread on behalf of policy/host/jco-bridge.ts. One job per worker: the bridge posts a request,
 * this answers once and exits. Self-contained on purpose (see worker-script.ts).
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { JcoJob, JcoJobResult } from './jco-protocol';

interface JcoApi {
  parse(wat: string): Promise<Uint8Array>;
  componentEmbed(options: { binary: Uint8Array; witSource: string; world: string }): Promise<Uint8Array>;
  componentNew(bytes: Uint8Array): Promise<Uint8Array>;
  transpile(
    component: Uint8Array,
    options: Record<string, unknown>,
  ): Promise<{ files: Record<string, Uint8Array>; imports: string[]; exports: [string, string][] }>;
}

interface JcoWorkerData {
  readonly jcoUrl: string;
  readonly job: JcoJob;
}

async function run(data: JcoWorkerData): Promise<JcoJobResult> {
  const jco = (await import(data.jcoUrl)) as JcoApi;
  const { job } = data;
  switch (job.kind) {
    case 'build-from-wat': {
      const core = await jco.parse(job.wat);
      const embedded = await jco.componentEmbed({ binary: core, witSource: job.witSource, world: job.world });
      return { kind: 'component', bytes: await jco.componentNew(embedded) };
    }
    case 'transpile': {
      // Instantiation mode: the generated module imports nothing and receives every import as an
      // argument, so the host decides exactly what a plugin can reach. No WASI shim, no Node compat.
      const result = await jco.transpile(job.component, {
        name: 'plugin',
        instantiation: 'sync',
        wasiShim: false,
        nodejsCompat: false,
        noTypescript: true,
        quiet: true,
      });
      return { kind: 'transpiled', files: result.files, imports: result.imports, exports: result.exports.map(([name]) => name) };
    }
  }
}

run(workerData as JcoWorkerData).then(
  (result) => parentPort?.postMessage({ ok: true, result }),
  (error: unknown) => parentPort?.postMessage({ ok: false, message: error instanceof Error ? error.message : String(error) }),
);
