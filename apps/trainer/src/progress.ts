import { formatDuration } from './report/format-duration.js';

/** The part of a Node stream (process.stderr) a progress bar writes to. */
export type ProgressStream = { write(text: string): unknown; readonly isTTY?: boolean; readonly columns?: number };

export type ProgressOptions = {
  /** What is in progress: 'loading', 'quantizing', 'training'. */
  readonly label: string;
  readonly total: number;
  /** Seconds between plain lines when the stream is not a terminal; 0 prints none until the end. */
  readonly plainLineInterval?: number;
  /** Milliseconds clock, replaceable in tests. */
  readonly now?: () => number;
};

export type ProgressDetails = { readonly loss?: number; readonly tokensPerSecond?: number };

const barWidth = 24;
/** Redraws at most this often on a terminal (ms); the final state is always drawn. */
const redrawInterval = 100;

/**
 * A one-line progress display: `training [#####-----] 12/100 loss 1.2345 1.2k tok/s ETA 3m12s`. On a terminal the
 * line is redrawn in place with `\r`; elsewhere (a log file, CI) a plain line is printed now and then, so logs stay
 * readable.
 */
export class ProgressBar {
  private readonly now: () => number;
  private readonly startTime: number;
  private start: { value: number; time: number } | null = null;
  private current = 0;
  private details: ProgressDetails = {};
  private lastDraw = -Infinity;
  private drawnOnTerminal = false;

  constructor(
    private readonly stream: ProgressStream,
    private readonly options: ProgressOptions,
  ) {
    this.now = options.now ?? (() => performance.now());
    this.startTime = this.now();
  }

  /** The step of the last plain line, so `finish` does not print the same line twice. */
  private printedCurrent: number | null = null;

  update(current: number, details: ProgressDetails = {}): void {
    // Rate and ETA count from the first update, so a resumed run's earlier steps do not inflate the speed.
    this.start ??= { value: current, time: this.now() };
    this.current = current;
    this.details = details;
    const time = this.now();
    if (this.stream.isTTY) {
      if (time - this.lastDraw < redrawInterval && current < this.options.total) return;
      this.drawOnTerminal(time);
    } else {
      const interval = (this.options.plainLineInterval ?? 30) * 1000;
      if (interval === 0 || time - this.lastDraw < interval) return;
      this.stream.write(`${this.line(time)}\n`);
      this.printedCurrent = current;
    }
    this.lastDraw = time;
  }

  /** Prints a message on its own line, keeping the bar below it on a terminal. */
  log(message: string): void {
    if (this.drawnOnTerminal) this.stream.write('\r\x1b[K');
    this.stream.write(`${message}\n`);
    if (this.drawnOnTerminal) this.drawOnTerminal(this.now());
  }

  /** Draws the final state and ends the line. */
  finish(): void {
    const time = this.now();
    if (this.stream.isTTY) {
      this.drawOnTerminal(time);
      this.stream.write('\n');
    } else if (this.printedCurrent !== this.current) {
      this.stream.write(`${this.line(time)}\n`);
    }
    this.drawnOnTerminal = false;
  }

  private drawOnTerminal(time: number): void {
    const width = Math.max(20, (this.stream.columns ?? 80) - 1);
    this.stream.write(`\r${this.line(time, true).slice(0, width)}\x1b[K`);
    this.drawnOnTerminal = true;
  }

  private line(time: number, withBar = false): string {
    const { label, total } = this.options;
    const done = Math.min(1, total > 0 ? this.current / total : 1);
    const parts = [label];
    if (withBar) {
      const filled = Math.round(done * barWidth);
      parts.push(`[${'#'.repeat(filled)}${'-'.repeat(barWidth - filled)}]`);
    }
    parts.push(`${this.current}/${total}`);
    if (this.details.loss !== undefined) parts.push(`loss ${this.details.loss.toFixed(4)}`);
    if (this.details.tokensPerSecond !== undefined) parts.push(`${compactNumber(this.details.tokensPerSecond)} tok/s`);
    const start = this.start ?? { value: this.current, time };
    const progressed = this.current - start.value;
    const secondsPerUnit = (time - start.time) / 1000 / progressed;
    if (this.current >= total) parts.push(`done in ${formatDuration((time - this.startTime) / 1000)}`);
    else if (progressed > 0) parts.push(`ETA ${formatDuration(secondsPerUnit * (total - this.current))}`);
    return parts.join(' ');
  }
}

function compactNumber(value: number): string {
  if (value >= 1e6) return `${(value / 1e6).toFixed(1)}M`;
  if (value >= 1e3) return `${(value / 1e3).toFixed(1)}k`;
  return value.toFixed(0);
}
