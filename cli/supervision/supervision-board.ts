import type { SupervisedProcessRole, SupervisedProcessState, SupervisedProcessStatus } from '../../core/supervised-process';

type Listener = (processes: readonly SupervisedProcessStatus[]) => void;

/** The state of every process `npm start` supervises, itself included; listeners hear each change. */
export class SupervisionBoard {
  private readonly entries = new Map<string, SupervisedProcessStatus>();
  private readonly listeners: Listener[] = [];

  constructor() {
    this.entries.set('main', { name: 'main', role: 'main', state: 'running', pid: process.pid, restarts: 0, since: new Date().toISOString(), last_exit: null });
  }

  register(name: string, role: SupervisedProcessRole): void {
    this.entries.set(name, { name, role, state: 'starting', pid: null, restarts: 0, since: new Date().toISOString(), last_exit: null });
    this.changed();
  }

  transition(name: string, state: SupervisedProcessState, change: { readonly pid?: number | null; readonly exit?: string; readonly restarted?: boolean } = {}): void {
    const entry = this.entries.get(name);
    if (!entry) throw new Error(`supervised process ${name} is not registered`);
    this.entries.set(name, {
      ...entry,
      state,
      pid: change.pid === undefined ? entry.pid : change.pid,
      restarts: entry.restarts + (change.restarted ? 1 : 0),
      since: new Date().toISOString(),
      last_exit: change.exit ?? entry.last_exit,
    });
    this.changed();
  }

  snapshot(): SupervisedProcessStatus[] {
    return [...this.entries.values()];
  }

  onChange(listener: Listener): void {
    this.listeners.push(listener);
  }

  private changed(): void {
    const processes = this.snapshot();
    for (const listener of this.listeners) listener(processes);
  }
}
