import { ErrorCode } from '../../core/errors';
import type { EngineAdapter } from '../engines/engine-adapter';
import { ReplicaFailure } from './replica-failure';

export interface EngineWatch {
  /** Resolves when the engine has failed `failuresInRow` health checks in a row; never rejects. */
  readonly failed: Promise<ReplicaFailure>;
  stop(): void;
}

/**
 * An `external` engine is not our process, so no exit tells us it died: its health is polled instead,
 * and after `failuresInRow` failed checks in a row the replica fails like a crashed engine (Unready,
 * drained, restarted with backoff by the pool lifecycle). Issue 13: before, such a replica stayed Ready.
 */
export function watchExternalEngine(adapter: EngineAdapter, options: { readonly intervalMs: number; readonly failuresInRow: number }): EngineWatch {
  let settle: (failure: ReplicaFailure) => void = () => undefined;
  const failed = new Promise<ReplicaFailure>((resolve) => {
    settle = resolve;
  });
  let misses = 0;
  let lastDetail = 'no answer';
  let checking = false;
  const timer = setInterval(() => {
    if (checking) return;
    checking = true;
    void adapter
      .health(AbortSignal.timeout(options.intervalMs))
      .then(
        (health) => {
          lastDetail = health.detail ?? (health.ready ? 'ready' : 'not ready');
          return health.ready;
        },
        (error: unknown) => {
          lastDetail = error instanceof Error ? error.message : String(error);
          return false;
        },
      )
      .then((ready) => {
        checking = false;
        misses = ready ? 0 : misses + 1;
        if (misses < options.failuresInRow) return;
        clearInterval(timer);
        settle(new ReplicaFailure(ErrorCode.WORKER_RESET, 'engine_exit', `the external engine failed ${misses} health checks in a row (${lastDetail})`));
      });
  }, options.intervalMs);
  timer.unref();
  return { failed, stop: () => clearInterval(timer) };
}
