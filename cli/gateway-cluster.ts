import cluster, { type Worker } from 'node:cluster';
import { resolve } from 'node:path';
import type { Logger } from 'pino';

export interface GatewayCluster {
  /** Resolves once every gateway process listens. */
  readonly ready: Promise<void>;
  /** Passes a signal to every gateway process (SIGHUP: config reload). */
  signal(signal: NodeJS.Signals): void;
  stop(): Promise<void>;
}

const MAX_BACKOFF_MS = 30_000;
const STOP_GRACE_MS = 15_000;

/**
 * `gateway.processes` > 1: that many gateway processes (cli/gateway-worker-main.ts) as cluster workers,
 * so they share the public port and the primary hands connections round-robin. A worker that dies is
 * forked again with backoff. The primary (npm start) serves no HTTP itself.
 */
export function startGatewayCluster(count: number, args: readonly string[], env: NodeJS.ProcessEnv, logger: Logger): GatewayCluster {
  cluster.setupPrimary({ exec: resolve(__dirname, 'gateway-worker-main.js'), args: [...args], silent: false });
  cluster.schedulingPolicy = cluster.SCHED_RR;
  let stopping = false;
  let backoffMs = 1_000;
  const workers = new Set<Worker>();
  let listening = 0;
  let onAllListening: () => void = () => undefined;
  let onFailed: (error: Error) => void = () => undefined;
  const ready = new Promise<void>((resolveReady, reject) => {
    onAllListening = resolveReady;
    onFailed = reject;
  });
  let everyoneUp = false;

  const fork = (slot: number): void => {
    const startedAt = Date.now();
    const worker = cluster.fork({ ...env, ORCH_GATEWAY_PROCESS: String(slot) });
    workers.add(worker);
    worker.once('message', (message: unknown) => {
      if ((message as { event?: unknown }).event !== 'gateway-listening') return;
      listening += 1;
      if (listening >= count && !everyoneUp) {
        everyoneUp = true;
        onAllListening();
      }
    });
    worker.once('exit', (code, signal) => {
      workers.delete(worker);
      if (stopping) return;
      if (!everyoneUp) {
        onFailed(new Error(`gateway process ${slot} exited with ${code ?? signal} before it listened`));
        return;
      }
      if (Date.now() - startedAt > 60_000) backoffMs = 1_000;
      logger.error({ child: `gateway-${slot}`, code, signal, restart_in_ms: backoffMs }, 'gateway process exited; restarting');
      setTimeout(() => {
        if (!stopping) fork(slot);
      }, backoffMs).unref();
      backoffMs = Math.min(MAX_BACKOFF_MS, backoffMs * 2);
    });
  };
  for (let slot = 0; slot < count; slot += 1) fork(slot);

  return {
    ready,
    signal: (signal) => {
      for (const worker of workers) worker.process.kill(signal);
    },
    stop: async () => {
      stopping = true;
      await Promise.all(
        [...workers].map(
          (worker) =>
            new Promise<void>((resolveStop) => {
              const timer = setTimeout(() => worker.process.kill('SIGKILL'), STOP_GRACE_MS);
              worker.once('exit', () => {
                clearTimeout(timer);
                resolveStop();
              });
              worker.process.kill('SIGTERM');
            }),
        ),
      );
    },
  };
}
