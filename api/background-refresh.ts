/**
 * Runs `read` at start and then every `intervalMs`, one run at a time: whoever calls `refresh()` while a
 * run is in flight shares it. The gateway's views of Temporal (backlogs, replica records, pool states)
 * refresh this way so a request's path reads memory. `read` handles its own errors (it keeps the last
 * known values); a rejection that still escapes is dropped, never left unhandled.
 */
export class BackgroundRefresh {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(
    private readonly intervalMs: number,
    private readonly read: () => Promise<void>,
  ) {}

  start(): void {
    if (this.timer) return;
    void this.refresh();
    this.timer = setInterval(() => void this.refresh(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  refresh(): Promise<void> {
    this.running ??= this.read()
      .catch(() => undefined)
      .finally(() => {
        this.running = undefined;
      });
    return this.running;
  }
}
