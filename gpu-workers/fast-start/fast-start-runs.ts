import type { Logger } from 'pino';
import type { EngineGeneration } from '../../activities/engine-generation';

/** A fast-started run nobody adopted in this long is given up (its gateway died before writing the workflow). */
export const DEFAULT_ADOPT_TIMEOUT_MS = 30_000;

interface RegisteredRun {
  readonly generation: EngineGeneration;
  readonly timer: NodeJS.Timeout;
  finished: boolean;
}

/**
 * The runs this replica started before their workflows were scheduled (ADR 2026-12-06 fast start), by
 * task id, until the engine activity adopts them. `active` counts runs registered and not yet finished,
 * adopted or not: the lane grants one poll permit per active run, so a replica whose slots are all taken
 * by fast starts still polls for their adoptions.
 */
export class FastStartRuns {
  private readonly runs = new Map<string, RegisteredRun>();
  private activeRuns = 0;
  private readonly listeners = new Set<() => void>();

  constructor(
    private readonly logger: Logger,
    private readonly adoptTimeoutMs = DEFAULT_ADOPT_TIMEOUT_MS,
  ) {}

  /** Runs still decoding (adopted or waiting for their activity). */
  get active(): number {
    return this.activeRuns;
  }

  has(taskId: string): boolean {
    return this.runs.has(taskId);
  }

  register(generation: EngineGeneration): void {
    const { taskId } = generation;
    const timer = setTimeout(() => {
      if (this.runs.get(taskId)?.generation !== generation) return;
      this.runs.delete(taskId);
      generation.abort('withdrawn');
      this.logger.warn({ job_id: taskId, adopt_timeout_ms: this.adoptTimeoutMs }, 'fast-started run never adopted by its workflow; given up');
    }, this.adoptTimeoutMs);
    timer.unref();
    const entry: RegisteredRun = { generation, timer, finished: false };
    this.runs.set(taskId, entry);
    this.activeRuns += 1;
    this.changed();
    // The activity that adopts the run sees its failure; until then nobody awaits it.
    generation.done
      .catch(() => undefined)
      .finally(() => {
        entry.finished = true;
        this.activeRuns -= 1;
        this.changed();
      });
  }

  /** Hands the run to the engine activity, once; an attempt that is not the fast start's own is refused and the run given up. */
  adopt(taskId: string, attempt: number): EngineGeneration | undefined {
    const entry = this.runs.get(taskId);
    if (!entry) return undefined;
    this.runs.delete(taskId);
    clearTimeout(entry.timer);
    if (entry.generation.attempt !== attempt) {
      entry.generation.abort('withdrawn');
      return undefined;
    }
    return entry.generation;
  }

  /** The gateway gave the run up (its workflow could not be written, or it was a duplicate). */
  withdraw(taskId: string): boolean {
    const entry = this.runs.get(taskId);
    if (!entry) return false;
    this.runs.delete(taskId);
    clearTimeout(entry.timer);
    entry.generation.abort('withdrawn');
    return true;
  }

  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private changed(): void {
    for (const listener of [...this.listeners]) listener();
  }
}
