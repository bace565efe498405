import { pathToFileURL } from 'node:url';
import type { JcoJob, JcoJobResult, JcoReply } from './jco-protocol';
import { startWorker } from './worker-script';

/**
 * Runs one jco job in a short-lived worker thread and returns its result. jco is only needed at
 * start-up (transpiling a plugin) and when building the example plugin, never per decision.
 */
export async function runJcoJob(job: JcoJob): Promise<JcoJobResult> {
  const jcoUrl = pathToFileURL(require.resolve('@bytecodealliance/jco')).href;
  const worker = startWorker('jco-worker', { workerData: { jcoUrl, job } });
  try {
    const reply = await new Promise<JcoReply>((resolve, reject) => {
      worker.once('message', (message: JcoReply) => resolve(message));
      worker.once('error', reject);
      worker.once('exit', (code) => reject(new Error(`jco worker exited with code ${code} before answering`)));
    });
    if (!reply.ok) throw new Error(reply.message);
    return reply.result;
  } finally {
    await worker.terminate();
  }
}

/** WAT + WIT → a component (`jco parse`, `jco embed`, `jco new`). */
export async function buildComponentFromWat(wat: string, witSource: string, world: string): Promise<Uint8Array> {
  const result = await runJcoJob({ kind: 'build-from-wat', wat, witSource, world });
  if (result.kind !== 'component') throw new Error('jco worker answered a build with something else');
  return result.bytes;
}
