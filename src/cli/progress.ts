/**
 * The progress line of `imh-bridge sync` over many episodes, on standard error: done of total,
 * rate, time left and failures so far. On a terminal it is one line rewritten in place at most
 * every `ttyIntervalMs`; elsewhere (a log file, CI) a plain line every `lineIntervalMs`. It only
 * ever shows counts, never anything of an episode.
 */

export interface ProgressOptions {
  write: (text: string) => void;
  /** A terminal: rewrite one line in place (carriage return and erase to end of line). */
  tty: boolean;
  now?: () => number;
  /** Shortest time between two redraws on a terminal (default 200 ms). */
  ttyIntervalMs?: number;
  /** Time between two lines when not on a terminal (default 10 s). */
  lineIntervalMs?: number;
}

/** `1 h 02 min`, `3 min 07 s`, `42 s`. */
export function formatDuration(ms: number): string {
  if (ms < 9_950) return `${(Math.max(0, ms) / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, '0')} min`;
}

/** Episodes per second, with one decimal below 100. */
export function formatRate(perSecond: number): string {
  return perSecond >= 100 ? String(Math.round(perSecond)) : (Math.round(perSecond * 10) / 10).toFixed(1);
}

export class Progress {
  private readonly total: number;
  private readonly opts: Required<ProgressOptions>;
  private readonly started: number;
  private last = -Infinity;
  private shown = false;
  private done = 0;
  private failed = 0;

  constructor(total: number, options: ProgressOptions) {
    this.total = total;
    const given = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) as ProgressOptions;
    this.opts = { now: Date.now, ttyIntervalMs: 200, lineIntervalMs: 10_000, ...given };
    this.started = this.opts.now();
    // Off a terminal the first line comes after one interval: a short run prints only its summary.
    if (!this.opts.tty) this.last = this.started;
  }

  /** The line as it stands now. */
  line(): string {
    const elapsed = this.opts.now() - this.started;
    const rate = elapsed > 0 ? (this.done * 1000) / elapsed : 0;
    const left = this.total - this.done;
    const pct = this.total ? Math.floor((this.done * 1000) / this.total) / 10 : 100;
    const eta = this.done && left > 0 && rate > 0 ? `, about ${formatDuration((left / rate) * 1000)} left` : '';
    return `${this.done} of ${this.total} episodes (${pct.toFixed(1)} %), ${formatRate(rate)}/s${eta}, ${this.failed} failed`;
  }

  /**
   * One more episode finished (`failed` when it was not delivered), with the line that says why
   * when it failed: written as a line of its own, without tearing the progress line on a terminal.
   */
  tick(failed: boolean, note?: string): void {
    this.done++;
    if (failed) this.failed++;
    if (note !== undefined) {
      this.opts.write(this.opts.tty && this.shown ? `\r\x1b[K${note}\n` : `${note}\n`);
      // On a terminal the progress line comes back at once, with this failure counted.
      if (this.opts.tty) return this.redraw();
    }
    const interval = this.opts.tty ? this.opts.ttyIntervalMs : this.opts.lineIntervalMs;
    if (this.opts.now() - this.last >= interval) this.redraw();
  }

  /** A line of its own that is no episode's outcome (why the run stopped). */
  note(text: string): void {
    this.opts.write(this.opts.tty && this.shown ? `\r\x1b[K${text}\n` : `${text}\n`);
    if (this.opts.tty && this.shown) this.draw();
  }

  /** On a terminal: the final state, and the line ended. Elsewhere nothing (the summary follows). */
  finish(): void {
    if (!this.opts.tty) return;
    this.draw();
    this.opts.write('\n');
  }

  private redraw(): void {
    this.last = this.opts.now();
    this.draw();
  }

  private draw(): void {
    this.shown = true;
    this.opts.write(this.opts.tty ? `\r\x1b[K${this.line()}` : `${this.line()}\n`);
  }
}
