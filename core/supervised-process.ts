/**
 * What `npm start` reports of each process it runs (issue 15 item 5): the start-up print, `GET /health`
 * and the `supervised_process_*` metrics all read this one shape.
 */
export type SupervisedProcessRole = 'main' | 'temporal' | 'gateway' | 'workflow-worker' | 'pool-worker';

/**
 * starting: spawned, not yet serving · running · restarting: exited on its own, the next start is
 * scheduled · stopping / stopped: the stack is shutting down · failed: the supervisor gave up on it.
 */
export type SupervisedProcessState = 'starting' | 'running' | 'restarting' | 'stopping' | 'stopped' | 'failed';

export interface SupervisedProcessStatus {
  readonly name: string;
  readonly role: SupervisedProcessRole;
  readonly state: SupervisedProcessState;
  readonly pid: number | null;
  /** Restarts since the stack started. */
  readonly restarts: number;
  /** When `state` was entered (ISO 8601). */
  readonly since: string;
  /** How the last exit happened ("signal SIGKILL", "code 1"), or null before any. */
  readonly last_exit: string | null;
}

/** Serving means every supervised process is running; anything else is a stack that is not whole. */
export function stackIsWhole(processes: readonly SupervisedProcessStatus[]): boolean {
  return processes.every((process) => process.state === 'running');
}
