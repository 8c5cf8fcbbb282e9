// Console output of the trainer: a tqdm-like progress bar redrawn in place on a terminal, plain periodic
// lines without control characters otherwise (logs, CI), and the original project's per-epoch line.

/** What the bar writes to: process.stderr, or anything with write() (tests). */
export interface ProgressStream {
  write(chunk: string): boolean;
  isTTY?: boolean;
  columns?: number;
}

export interface ProgressOptions {
  total: number;
  /** e.g. "EPOCH 3" */
  label?: string;
  /** default process.stderr */
  stream?: ProgressStream | NodeJS.WriteStream;
  /** default stream.isTTY */
  isTTY?: boolean;
  /** clock in milliseconds (tests) */
  now?: () => number;
  /** terminal: least time between redraws, default 100 ms */
  redrawMs?: number;
  /** not a terminal: a line each time this fraction more is done (default 0.1) ... */
  plainFraction?: number;
  /** ... or this long has passed since the last line (default 30 s) */
  plainMs?: number;
}

const PARTIAL_BLOCKS = ' ▏▎▍▌▋▊▉';

export class ProgressBar {
  private readonly total: number;
  private readonly label: string;
  private readonly stream: ProgressStream;
  private readonly tty: boolean;
  private readonly now: () => number;
  private readonly redrawMs: number;
  private readonly plainFraction: number;
  private readonly plainMs: number;
  private readonly start: number;
  private n = 0;
  private extra: Record<string, string | number> = {};
  private finished = false;
  /** smoothed items per second (exponential moving average, as tqdm) */
  private rate: number | null = null;
  private lastRateTime: number;
  private lastRateN = 0;
  private lastDraw = -Infinity;
  private lastLineLength = 0;
  private lastPlainTime: number;
  private lastPlainN = -1;
  private nextPlainFraction: number;

  constructor(opts: ProgressOptions) {
    if (!(opts.total >= 0) || !Number.isFinite(opts.total)) throw new Error(`ProgressBar: total must be a finite number >= 0, got ${opts.total}`);
    this.total = opts.total;
    this.label = opts.label ?? '';
    this.stream = opts.stream ?? process.stderr;
    this.tty = opts.isTTY ?? !!this.stream.isTTY;
    this.now = opts.now ?? (() => performance.now());
    this.redrawMs = opts.redrawMs ?? 100;
    this.plainFraction = opts.plainFraction ?? 0.1;
    this.plainMs = opts.plainMs ?? 30_000;
    this.start = this.now();
    this.lastRateTime = this.start;
    this.lastPlainTime = this.start;
    this.nextPlainFraction = this.plainFraction;
    if (this.tty) this.draw(this.start);
  }

  /** n more items done; `extra` values (loss=...) are shown after the bar and kept until replaced. */
  tick(n = 1, extra?: Record<string, string | number>): void {
    if (this.finished) return;
    this.n += n;
    if (extra) Object.assign(this.extra, extra);
    const t = this.now();
    if (this.tty) {
      if (t - this.lastDraw >= this.redrawMs || this.n >= this.total) this.draw(t);
    } else {
      const fraction = this.total > 0 ? this.n / this.total : 1;
      if (fraction >= this.nextPlainFraction - 1e-12 || t - this.lastPlainTime >= this.plainMs) this.plainLine(t);
    }
  }

  /** Writes a message line without garbling the bar (the bar is redrawn below it on a terminal). */
  log(message: string): void {
    if (this.tty && !this.finished) {
      this.stream.write(`\r${' '.repeat(this.lastLineLength)}\r${message}\n`);
      this.lastLineLength = 0;
      this.draw(this.now());
    } else {
      this.stream.write(`${message}\n`);
    }
  }

  /** Final state: the last redraw and a newline on a terminal, the last line otherwise. */
  done(): void {
    if (this.finished) return;
    const t = this.now();
    if (this.tty) {
      this.draw(t);
      this.stream.write('\n');
    } else if (this.lastPlainN !== this.n) {
      this.plainLine(t);
    }
    this.finished = true;
  }

  private updateRate(t: number): void {
    const dt = (t - this.lastRateTime) / 1000;
    if (dt <= 0 || this.n === this.lastRateN) return;
    const instant = (this.n - this.lastRateN) / dt;
    this.rate = this.rate === null ? instant : 0.3 * instant + 0.7 * this.rate;
    this.lastRateTime = t;
    this.lastRateN = this.n;
  }

  /** "57%", "89/157", "[00:42<00:32, 2.11it/s]" and "loss=0.5123". */
  private parts(t: number) {
    this.updateRate(t);
    const fraction = this.total > 0 ? Math.min(1, this.n / this.total) : 1;
    const elapsed = (t - this.start) / 1000;
    const remaining = this.rate ? Math.max(0, this.total - this.n) / this.rate : this.n >= this.total ? 0 : null;
    const rate = this.rate === null ? '?it/s' : this.rate >= 1 || this.rate === 0 ? `${this.rate.toFixed(2)}it/s` : `${(1 / this.rate).toFixed(2)}s/it`;
    const extras = Object.entries(this.extra).map(([k, v]) => `${k}=${formatValue(v)}`).join(' ');
    return {
      fraction,
      percent: `${Math.round(fraction * 100)}%`.padStart(4), // rounded, as tqdm's {percentage:3.0f}
      count: `${this.n}/${this.total}`,
      times: `[${formatDuration(elapsed)}<${remaining === null ? '?' : formatDuration(remaining)}, ${rate}]`,
      extras,
    };
  }

  private draw(t: number): void {
    const p = this.parts(t);
    const head = this.label ? `${this.label} ` : '';
    const tail = `| ${p.count} ${p.times}${p.extras ? ` ${p.extras}` : ''}`;
    // Fill the terminal like tqdm, within reason; without a width, a 10-cell bar.
    const columns = this.stream.columns;
    const width = columns ? Math.max(10, Math.min(40, columns - 1 - head.length - p.percent.length - 1 - tail.length)) : 10;
    let line = `${head}${p.percent}|${bar(p.fraction, width)}${tail}`;
    if (columns && line.length > columns - 1) line = line.slice(0, columns - 1); // a wrapped line cannot be redrawn
    const pad = Math.max(0, this.lastLineLength - line.length);
    this.stream.write(`\r${line}${' '.repeat(pad)}`);
    this.lastLineLength = line.length;
    this.lastDraw = t;
  }

  private plainLine(t: number): void {
    const p = this.parts(t);
    const head = this.label ? `${this.label} ` : '';
    this.stream.write(`${head}${p.percent.trim()} ${p.count} ${p.times}${p.extras ? ` ${p.extras}` : ''}\n`);
    this.lastPlainTime = t;
    this.lastPlainN = this.n;
    const fraction = this.total > 0 ? this.n / this.total : 1;
    while (this.nextPlainFraction <= fraction + 1e-12) this.nextPlainFraction += this.plainFraction;
  }
}

/** A bar of `width` cells with eighth-block resolution, as tqdm draws it. */
function bar(fraction: number, width: number): string {
  const eighths = Math.floor(fraction * width * 8);
  const full = Math.floor(eighths / 8);
  if (full >= width) return '█'.repeat(width);
  const partial = eighths % 8;
  return '█'.repeat(full) + (partial > 0 ? PARTIAL_BLOCKS[partial] : ' ') + ' '.repeat(width - full - 1);
}

function formatValue(v: string | number): string {
  if (typeof v === 'string') return v;
  if (Number.isInteger(v)) return String(v);
  return Math.abs(v) >= 1e-3 || !Number.isFinite(v) ? v.toFixed(4) : v.toExponential(2);
}

/** "MM:SS", or "H:MM:SS" from an hour on. */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  const two = (x: number) => String(x).padStart(2, '0');
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  return h > 0 ? `${h}:${two(m)}:${two(sec)}` : `${two(m)}:${two(sec)}`;
}

/** The original project's per-epoch line, character for character:
 *  `Epoch : 7 - loss : 0.2399 - acc: 0.9014 - val_loss : 0.9127 - val_acc: 0.6396` */
export function formatEpochLine(e: { epoch: number; loss: number; acc: number; val_loss: number; val_acc: number }): string {
  return `Epoch : ${e.epoch} - loss : ${e.loss.toFixed(4)} - acc: ${e.acc.toFixed(4)} - val_loss : ${e.val_loss.toFixed(4)} - val_acc: ${e.val_acc.toFixed(4)}`;
}
