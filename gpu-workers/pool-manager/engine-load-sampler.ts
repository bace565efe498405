import type { Logger } from 'pino';
import type { EngineAdapter, EngineLoad } from '../engines/engine-adapter';

export type { EngineLoad } from '../engines/engine-adapter';

/**
 * Reads the engine's load (the adapter's `readLoad`) every `intervalMs` while the replica is Ready and hands
 * it on (the replica publishes it with its slot load, at most once a second). One read at a time; a failed
 * read is skipped — the engine's health is watched elsewhere.
 */
export class EngineLoadSampler {
  private timer: NodeJS.Timeout | undefined;
  private reading = false;

  constructor(
    private readonly readLoad: NonNullable<EngineAdapter['readLoad']>,
    private readonly intervalMs: number,
    private readonly onLoad: (load: EngineLoad) => void,
    private readonly logger: Logger,
  ) {}

  start(): void {
    this.stop();
    this.timer = setInterval(() => void this.sample(), this.intervalMs);
    this.timer.unref();
    void this.sample();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private async sample(): Promise<void> {
    if (this.reading) return;
    this.reading = true;
    try {
      const load = await this.readLoad(AbortSignal.timeout(this.intervalMs));
      if (this.timer !== undefined) this.onLoad(load);
    } catch (error) {
      this.logger.debug({ err: error }, 'engine load not read; load figures unchanged');
    } finally {
      this.reading = false;
    }
  }
}
