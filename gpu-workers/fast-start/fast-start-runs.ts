import type { Logger } from 'pino';
import type { EngineGeneration } from '../../activities/engine-generation';

/**
 * How long a run is kept once started: long enough for its workflow to be written and for the workflow
 * worker (or one that took over from it) to collect the outcome; a run nobody collects is given up
 * (its gateway died before writing the workflow) and its slot freed.
 */
export const DEFAULT_RETENTION_MS = 30_000;

interface RegisteredRun {
  readonly generation: EngineGeneration;
  timer: NodeJS.Timeout;
  collected: boolean;
  ended: boolean;
}

/**
 * The runs this replica started before their workflows existed (ADR 2026-12-06 fast start), by task id.
 * The workflow collects each run's outcome through the fast-start listener (a local activity waiting on
 * it); a run is kept until its outcome was collected and a retention period passed, so a workflow worker
 * that took over a task after another died can collect it again.
 */
export class FastStartRuns {
  private readonly runs = new Map<string, RegisteredRun>();
  private decoding = 0;
  private readonly idleWaiters = new Set<() => void>();

  constructor(
    private readonly logger: Logger,
    private readonly retentionMs = DEFAULT_RETENTION_MS,
  ) {}

  has(taskId: string): boolean {
    return this.runs.has(taskId);
  }

  register(generation: EngineGeneration): void {
    const { taskId } = generation;
    const entry: RegisteredRun = { generation, timer: setTimeout(() => this.expire(taskId, generation), this.retentionMs), collected: false, ended: false };
    entry.timer.unref();
    this.runs.set(taskId, entry);
    this.decoding += 1;
    // The workflow sees a failure when it collects the outcome; until then nobody awaits it. Once the run
    // ended it is kept for the retention period from then, so a taken-over workflow can still collect it.
    generation.done
      .catch(() => undefined)
      .finally(() => {
        entry.ended = true;
        this.decoding -= 1;
        if (this.decoding === 0) for (const wake of [...this.idleWaiters]) wake();
        if (this.runs.get(taskId)?.generation !== generation) return;
        clearTimeout(entry.timer);
        entry.timer = setTimeout(() => this.expire(taskId, generation), this.retentionMs);
        entry.timer.unref();
      });
  }

  /** Resolves once no run decodes: a drain or a stop waits for fast-started runs as for its activities. */
  whenIdle(): Promise<void> {
    if (this.decoding === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const wake = (): void => {
        this.idleWaiters.delete(wake);
        resolve();
      };
      this.idleWaiters.add(wake);
    });
  }

  /** The run's outcome (the generation's promise), for the workflow's local activity; undefined if unknown here. */
  outcome(taskId: string): EngineGeneration | undefined {
    const entry = this.runs.get(taskId);
    if (!entry) return undefined;
    entry.collected = true;
    return entry.generation;
  }

  /** Gives the run up (the gateway could not write its workflow, the task was cancelled): the engine request is aborted. */
  withdraw(taskId: string): boolean {
    const entry = this.runs.get(taskId);
    if (!entry) return false;
    entry.generation.abort('withdrawn');
    return true;
  }

  /**
   * A run nobody collected within the retention period was orphaned by its gateway: abort it. A collected
   * run is kept while it decodes (its workflow may be taken over and collect it again), then for the
   * retention period.
   */
  private expire(taskId: string, generation: EngineGeneration): void {
    const entry = this.runs.get(taskId);
    if (entry?.generation !== generation) return;
    if (entry.collected && !entry.ended) {
      entry.timer = setTimeout(() => this.expire(taskId, generation), this.retentionMs);
      entry.timer.unref();
      return;
    }
    this.runs.delete(taskId);
    if (entry.collected) return;
    generation.abort('withdrawn');
    this.logger.warn({ job_id: taskId, retention_ms: this.retentionMs }, 'fast-started run never collected by its workflow; given up');
  }
}
