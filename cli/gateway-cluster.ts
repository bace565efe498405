import cluster, { type Worker } from 'node:cluster';
import { resolve } from 'node:path';
import type { Logger } from 'pino';
import type { SupervisedProcessStatus } from '../core/supervised-process';
import type { SupervisionBoard } from './supervision/supervision-board';

export interface GatewayCluster {
  /** Resolves once every gateway process listens. */
  readonly ready: Promise<void>;
  /** Passes a signal to every gateway process (SIGHUP: config reload). */
  signal(signal: NodeJS.Signals): void;
  stop(): Promise<void>;
}

const FIRST_BACKOFF_MS = 1_000;
const MAX_BACKOFF_MS = 30_000;
/** A process that listened this long died of something else than its start: it restarts at the first backoff (as child-supervisor.ts). */
const HEALTHY_AFTER_LISTENING_MS = 1_000;
const STOP_GRACE_MS = 15_000;

/** The message that hands a gateway process the board, for its GET /health and metrics (cli/gateway-worker-main.ts). */
export interface SupervisionMessage {
  readonly event: 'supervision';
  readonly processes: readonly SupervisedProcessStatus[];
}

/**
 * `gateway.processes` > 1: that many gateway processes (cli/gateway-worker-main.ts) as cluster workers,
 * so they share the public port and the primary hands connections round-robin. A worker that dies is
 * forked again with backoff and shows on the board; every process gets the board as it changes. The
 * primary (npm start) serves no HTTP itself.
 */
export function startGatewayCluster(count: number, args: readonly string[], env: NodeJS.ProcessEnv, logger: Logger, board: SupervisionBoard): GatewayCluster {
  cluster.setupPrimary({ exec: resolve(__dirname, 'gateway-worker-main.js'), args: [...args], silent: false });
  cluster.schedulingPolicy = cluster.SCHED_RR;
  let stopping = false;
  let backoffMs = FIRST_BACKOFF_MS;
  const workers = new Set<Worker>();
  let listening = 0;
  let onAllListening: () => void = () => undefined;
  let onFailed: (error: Error) => void = () => undefined;
  const ready = new Promise<void>((resolveReady, reject) => {
    onAllListening = resolveReady;
    onFailed = reject;
  });
  let everyoneUp = false;
  const tell = (worker: Worker, processes: readonly SupervisedProcessStatus[]): void => {
    if (worker.isConnected()) worker.send({ event: 'supervision', processes } satisfies SupervisionMessage);
  };
  board.onChange((processes) => {
    for (const worker of workers) tell(worker, processes);
  });
  for (let slot = 0; slot < count; slot += 1) board.register(`gateway-${slot}`, 'gateway');

  const fork = (slot: number, restarted: boolean): void => {
    let listeningSince: number | undefined;
    const worker = cluster.fork({ ...env, ORCH_GATEWAY_PROCESS: String(slot) });
    workers.add(worker);
    board.transition(`gateway-${slot}`, 'starting', { pid: worker.process.pid ?? null, restarted });
    worker.once('message', (message: unknown) => {
      if ((message as { event?: unknown }).event !== 'gateway-listening') return;
      listeningSince = Date.now();
      board.transition(`gateway-${slot}`, 'running');
      tell(worker, board.snapshot());
      listening += 1;
      if (listening >= count && !everyoneUp) {
        everyoneUp = true;
        onAllListening();
      }
    });
    worker.once('exit', (code, signal) => {
      workers.delete(worker);
      const exit = signal ? `signal ${signal}` : `code ${String(code)}`;
      board.transition(`gateway-${slot}`, stopping ? 'stopped' : 'restarting', { pid: null, exit });
      if (stopping) return;
      if (!everyoneUp) {
        onFailed(new Error(`gateway process ${slot} exited with ${code ?? signal} before it listened`));
        return;
      }
      // Only instances that die young (a start that fails) double the wait.
      if (listeningSince !== undefined && Date.now() - listeningSince >= HEALTHY_AFTER_LISTENING_MS) backoffMs = FIRST_BACKOFF_MS;
      logger.error({ child: `gateway-${slot}`, code, signal, restart_in_ms: backoffMs }, 'gateway process exited; restarting');
      setTimeout(() => {
        if (!stopping) fork(slot, true);
      }, backoffMs).unref();
      backoffMs = Math.min(MAX_BACKOFF_MS, backoffMs * 2);
    });
  };
  for (let slot = 0; slot < count; slot += 1) fork(slot, false);

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
