/**
 * Progress of the one-time provisioning steps (downloads, builds) on stderr: a single updating line on a
 * terminal; elsewhere (CI logs, files) a line per 10%, or one a minute while there is no percentage.
 */

/** Where a meter writes: process.stderr, or a fake in tests. */
export interface MeterStream {
  write(text: string): unknown;
  readonly isTTY?: boolean | undefined;
  readonly columns?: number | undefined;
}

export interface MeterOptions {
  readonly stream?: MeterStream;
  /** Milliseconds; injectable so tests control rate, ETA and throttling. */
  readonly now?: () => number;
}

const PREFIX = '[llama-orch] ';
const BAR_WIDTH = 20;
/** Redraws of the terminal line, at most this often. */
const REDRAW_MS = 100;
/** Off a terminal, with no percentage to step by, a "still going" line this often. */
const HEARTBEAT_MS = 60_000;
/** The rate is measured over this much recent time, so a stall shows within seconds. */
const RATE_WINDOW_MS = 5_000;
const SPINNER = ['-', '\\', '|', '/'];

/** Decimal units, as pip and npm print sizes: `512 B`, `40 kB`, `95.1 MB`, `1.20 GB`. */
export function formatBytes(bytes: number): string {
  if (bytes >= 1e9) return `${(bytes / 1e9).toFixed(2)} GB`;
  if (bytes >= 1e6) return `${(bytes / 1e6).toFixed(1)} MB`;
  if (bytes >= 1e3) return `${Math.round(bytes / 1e3)} kB`;
  return `${Math.round(bytes)} B`;
}

/** `40.0/95.1 MB`: both in the total's unit, so the two numbers compare at a glance. */
export function formatBytesOf(doneBytes: number, totalBytes: number): string {
  const [divisor, unit, digits] = totalBytes >= 1e9 ? [1e9, 'GB', 2] : totalBytes >= 1e6 ? [1e6, 'MB', 1] : [1e3, 'kB', 0];
  return `${(doneBytes / divisor).toFixed(digits)}/${(totalBytes / divisor).toFixed(digits)} ${unit}`;
}

export function formatRate(bytesPerSecond: number): string {
  return `${formatBytes(bytesPerSecond)}/s`;
}

/** `0:07`, `12:03`, `1:02:03`. */
export function formatDuration(ms: number): string {
  const total = Math.max(0, Math.round(ms / 1000));
  const [hours, minutes, seconds] = [Math.floor(total / 3600), Math.floor((total % 3600) / 60), total % 60];
  const two = (n: number): string => String(n).padStart(2, '0');
  return hours > 0 ? `${hours}:${two(minutes)}:${two(seconds)}` : `${minutes}:${two(seconds)}`;
}

/** Time left at the current rate; undefined while there is no rate to go by. */
export function etaMs(doneBytes: number, totalBytes: number, bytesPerSecond: number | undefined): number | undefined {
  if (bytesPerSecond === undefined || bytesPerSecond <= 0) return undefined;
  return (Math.max(0, totalBytes - doneBytes) / bytesPerSecond) * 1000;
}

export function renderBar(fraction: number, width = BAR_WIDTH): string {
  const filled = Math.round(Math.min(1, Math.max(0, fraction)) * width);
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}]`;
}

/** A build's own progress: make's `[ 42%]`, or ninja's `[12/345]`; undefined on any other line. */
export function buildPercent(line: string): number | undefined {
  const make = /^\[\s*(\d{1,3})%\]/.exec(line);
  if (make?.[1] !== undefined) return Math.min(100, Number(make[1]));
  const ninja = /^\[(\d+)\/(\d+)\]/.exec(line);
  if (ninja?.[1] !== undefined && ninja[2] !== undefined && Number(ninja[2]) > 0) return Math.floor((Number(ninja[1]) / Number(ninja[2])) * 100);
  return undefined;
}

/** What a meter shows now: the terminal's line, or (off a terminal) a line to print if one is due. */
interface Frame {
  readonly live: string;
  readonly logLine: string;
  /** 0..10 while a percentage is known: off a terminal, a line is printed when this goes up. */
  readonly step: number | undefined;
}

/** The terminal line and the off-terminal throttling that every meter shares. */
abstract class Meter {
  protected readonly stream: MeterStream;
  protected readonly now: () => number;
  protected readonly startedAt: number;
  private readonly tty: boolean;
  private drawnAt = -Infinity;
  private shown = '';
  private printedStep = 0;
  private printedAt: number;
  private spinnerFrame = 0;
  private closed = false;

  protected constructor(protected readonly label: string, options: MeterOptions) {
    this.stream = options.stream ?? process.stderr;
    this.now = options.now ?? Date.now;
    this.tty = this.stream.isTTY === true;
    this.startedAt = this.now();
    this.printedAt = this.startedAt;
  }

  protected abstract frame(spinner: string): Frame;

  /** Shows the current state: redrawn on a terminal (throttled), else printed when a 10% step or a minute has passed. */
  protected render(force = false): void {
    if (this.closed) return;
    const at = this.now();
    if (this.tty) {
      if (!force && at - this.drawnAt < REDRAW_MS) return;
      this.drawnAt = at;
      this.spinnerFrame += 1;
      this.draw(this.frame(SPINNER[this.spinnerFrame % SPINNER.length] ?? '-').live);
      return;
    }
    const frame = this.frame('');
    const due = frame.step !== undefined ? frame.step > this.printedStep && frame.step < 10 : at - this.printedAt >= HEARTBEAT_MS;
    if (!due) return;
    if (frame.step !== undefined) this.printedStep = frame.step;
    this.printedAt = at;
    this.stream.write(`${PREFIX}${frame.logLine}\n`);
  }

  /** Called on a timer, so the spinner turns and a stalled download shows its rate falling. */
  tick(): void {
    this.render();
  }

  /** A line from the running tool (a warning, say), printed above the bar rather than through it. */
  log(line: string): void {
    if (this.tty && this.shown !== '') {
      this.stream.write(`\r\x1b[K${line}\n`);
      this.stream.write(this.shown);
    } else {
      this.stream.write(`${line}\n`);
    }
  }

  /** Ends the meter: the bar gives way to `summary` (when given), which is printed off a terminal too. */
  finish(summary?: string): void {
    if (this.closed) return;
    this.closed = true;
    if (this.tty && this.shown !== '') this.stream.write('\r\x1b[K');
    this.shown = '';
    if (summary !== undefined) this.stream.write(`${PREFIX}${summary}\n`);
  }

  private draw(text: string): void {
    // 0 where the terminal reports no size (a bare pty).
    const columns = this.stream.columns || 80;
    const line = `${PREFIX}${text}`;
    // One physical line: a wrapped line would leave a copy behind on every redraw.
    this.shown = `\r${line.length >= columns ? `${line.slice(0, Math.max(0, columns - 2))}…` : line}\x1b[K`;
    this.stream.write(this.shown);
  }
}

export interface TransferOptions extends MeterOptions {
  /** The size when known before the tool says it (shown with `~`; the bar stops at 99% until done). */
  readonly estimatedBytes?: number | undefined;
}

/** A download: percent, MB done of total, rate and ETA. */
export class TransferMeter extends Meter {
  private doneBytes = 0;
  private totalBytes: number | undefined;
  private estimate: boolean;
  private readonly samples: { at: number; bytes: number }[] = [];

  constructor(label: string, options: TransferOptions = {}) {
    super(label, options);
    this.totalBytes = options.estimatedBytes;
    this.estimate = options.estimatedBytes !== undefined;
    this.samples.push({ at: this.startedAt, bytes: 0 });
  }

  /** The exact size, once the tool has said it. */
  setTotal(bytes: number): void {
    this.totalBytes = bytes;
    this.estimate = false;
    this.render(true);
  }

  /** Bytes so far; a smaller count (the tool moved its finished file away) does not undo what was done. */
  update(doneBytes: number): void {
    this.doneBytes = Math.max(this.doneBytes, doneBytes);
    const at = this.now();
    this.samples.push({ at, bytes: this.doneBytes });
    while (this.samples.length > 2 && at - (this.samples[1]?.at ?? at) >= RATE_WINDOW_MS) this.samples.shift();
    this.render();
  }

  /**
   * The tool says it succeeded: all of it arrived, seen by the last poll or not — the exact total, or the size of
   * the file it left. Nothing seen at all was no download (a cache hit), and stays that way.
   */
  complete(fileBytes?: number): void {
    if (this.doneBytes <= 0) return;
    const total = fileBytes ?? (this.estimate ? undefined : this.totalBytes);
    if (total !== undefined) this.doneBytes = Math.max(this.doneBytes, total);
  }

  /** Bytes per second over the last few seconds; undefined until half a second has been measured. */
  rate(): number | undefined {
    const first = this.samples[0];
    const last = this.samples[this.samples.length - 1];
    if (first === undefined || last === undefined || last.at - first.at < 500) return undefined;
    return ((last.bytes - first.bytes) / (last.at - first.at)) * 1000;
  }

  /** `95.1 MB in 0:12 (7.9 MB/s)`, or nothing when no byte was seen (a cache hit). */
  summary(): string | undefined {
    if (this.doneBytes <= 0) return undefined;
    const elapsed = this.now() - this.startedAt;
    const rate = elapsed > 0 ? `, ${formatRate((this.doneBytes / elapsed) * 1000)}` : '';
    return `${this.label}: ${formatBytes(this.doneBytes)} in ${formatDuration(elapsed)}${rate}`;
  }

  protected frame(spinner: string): Frame {
    // Before the first byte the tool is still resolving what to fetch: a rate of 0 would read as a stall.
    const rate = this.doneBytes > 0 ? this.rate() : undefined;
    const rateText = rate === undefined ? '' : formatRate(rate);
    // An estimate may be wrong both ways: past it, show what is known rather than 100% and counting.
    const total = this.totalBytes !== undefined && (!this.estimate || this.doneBytes < this.totalBytes) ? this.totalBytes : undefined;
    if (total === undefined) {
      const done = formatBytes(this.doneBytes);
      return { live: join(`${this.label} ${spinner}`, done, rateText), logLine: `${this.label}: ${join(done, rateText)}`, step: undefined };
    }
    const fraction = Math.min(this.estimate ? 0.99 : 1, this.doneBytes / Math.max(1, total));
    const percent = `${Math.floor(fraction * 100)}%`.padStart(4);
    const sizes = `${this.estimate ? '~' : ''}${formatBytesOf(this.doneBytes, total)}`;
    const eta = etaMs(this.doneBytes, total, rate);
    const etaText = `ETA ${eta === undefined ? '-:--' : formatDuration(eta)}`;
    return {
      live: join(`${this.label} ${renderBar(fraction)}`, percent, sizes, rateText, etaText),
      logLine: `${this.label}: ${percent.trim()} of ${this.estimate ? '~' : ''}${formatBytes(total)}${rate === undefined ? '' : `, ${rateText}`}, ${etaText}`,
      step: Math.floor(fraction * 10),
    };
  }
}

/** A compile: the build's own percentage when its output has one, else a spinner; elapsed time either way. */
export class BuildMeter extends Meter {
  private percent: number | undefined;

  constructor(label: string, options: MeterOptions = {}) {
    super(label, options);
  }

  /** Feeds one line of the build's output; lines without a percentage only turn the spinner. */
  line(text: string): void {
    const percent = buildPercent(text);
    if (percent !== undefined) this.percent = Math.max(this.percent ?? 0, percent);
    this.render();
  }

  protected frame(spinner: string): Frame {
    const elapsed = formatDuration(this.now() - this.startedAt);
    if (this.percent === undefined) {
      return { live: join(`${this.label} ${spinner}`, elapsed), logLine: `${this.label}: still running after ${elapsed}`, step: undefined };
    }
    const percent = `${this.percent}%`.padStart(4);
    return {
      live: join(`${this.label} ${renderBar(this.percent / 100)}`, percent, elapsed),
      logLine: `${this.label}: ${this.percent}% after ${elapsed}`,
      step: Math.floor(this.percent / 10),
    };
  }
}

function join(...parts: string[]): string {
  return parts.filter((part) => part !== '').join('  ');
}
