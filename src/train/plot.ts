// The training curves as a PNG: loss and accuracy side by side, train and val lines with point markers,
// nice-number ticks, axis labels, a legend and a title. Drawn into an RGBA buffer with a built-in 5x7
// font (font5x7.ts) and written with pngjs, so it needs nothing else.
import { PNG } from 'pngjs';
import { CAP_HEIGHT, GLYPH_HEIGHT, glyph, textWidth } from './font5x7.ts';

export interface EpochMetrics {
  epoch: number;
  loss: number;
  acc: number;
  val_loss: number;
  val_acc: number;
}

export interface PlotOptions {
  width?: number;
  height?: number;
  /** default: "Training: N epochs, best val_acc X (epoch E)" */
  title?: string;
}

type RGB = readonly [number, number, number];

/** Line colours (matplotlib's first two), exported so tests can look for them. */
export const PLOT_COLORS: { train: RGB; val: RGB } = { train: [31, 119, 180], val: [255, 127, 14] };
const WHITE: RGB = [255, 255, 255];
const TEXT: RGB = [35, 35, 35];
const FRAME: RGB = [90, 90, 90];
const GRID: RGB = [228, 228, 228];

export function renderTrainingPlot(history: readonly EpochMetrics[], opts: PlotOptions = {}): Uint8Array {
  const width = Math.round(opts.width ?? 1000);
  const height = Math.round(opts.height ?? 420);
  if (!(width >= 200 && height >= 120)) throw new Error(`renderTrainingPlot: size ${width}x${height} is too small (at least 200x120)`);
  const canvas = new Canvas(width, height);
  // Text at twice the font size unless the image is small.
  const scale = width >= 640 && height >= 280 ? 2 : 1;
  const lineHeight = GLYPH_HEIGHT * scale;

  const title = opts.title ?? defaultTitle(history);
  const titleScale = scale;
  const titleY = Math.round(lineHeight * 0.6);
  canvas.text(title, width / 2, titleY, titleScale, TEXT, 'center', true);

  const top = titleY + GLYPH_HEIGHT * titleScale + lineHeight;
  const epochs = history.map((h) => h.epoch);
  const panels: { label: string; train: number[]; val: number[]; clamp?: [number, number] }[] = [
    { label: 'loss', train: history.map((h) => h.loss), val: history.map((h) => h.val_loss) },
    { label: 'accuracy', train: history.map((h) => h.acc), val: history.map((h) => h.val_acc), clamp: [0, 1] },
  ];
  const gap = 8 * scale;
  const panelWidth = (width - gap) / 2;
  panels.forEach((p, i) => {
    const x0 = Math.round(i * (panelWidth + gap));
    drawPanel(canvas, { x0, x1: Math.round(x0 + panelWidth), y0: top, y1: height }, epochs, p, scale);
  });
  return canvas.toPNG();
}

function defaultTitle(history: readonly EpochMetrics[]): string {
  const n = history.length;
  if (n === 0) return 'Training: no epochs yet';
  let best = -1;
  history.forEach((h, i) => { if (Number.isFinite(h.val_acc) && (best < 0 || h.val_acc > history[best].val_acc)) best = i; });
  const head = `Training: ${n} epoch${n === 1 ? '' : 's'}`;
  return best < 0 ? head : `${head}, best val_acc ${history[best].val_acc.toFixed(4)} (epoch ${history[best].epoch})`;
}

interface Box { x0: number; x1: number; y0: number; y1: number }

function drawPanel(
  canvas: Canvas, area: Box, epochs: number[],
  panel: { label: string; train: number[]; val: number[]; clamp?: [number, number] }, scale: number,
): void {
  const lineHeight = GLYPH_HEIGHT * scale;
  const tickLen = 3 * scale;
  const pad = 4 * scale; // gap between ticks, labels and the frame

  // y range from the finite values of both series; ticks at nice numbers.
  const values = [...panel.train, ...panel.val].filter(Number.isFinite);
  const yTicks = niceAxis(values, Math.max(3, Math.floor((area.y1 - area.y0) / (lineHeight * 3.2))), panel.clamp);
  const yLabels = yTicks.ticks.map((t) => formatTick(t, yTicks.step));
  const yLabelWidth = Math.max(...yLabels.map((s) => textWidth(s))) * scale;

  const frame: Box = {
    x0: area.x0 + lineHeight + pad * 2 + yLabelWidth + pad + tickLen,
    x1: area.x1 - pad * 3,
    y0: area.y0,
    y1: area.y1 - (tickLen + pad + lineHeight + pad + lineHeight + pad),
  };
  // Data sits a little inside the frame so that points on the range ends stay visible.
  const inset = 6 * scale;
  const plot: Box = { x0: frame.x0 + inset, x1: frame.x1 - inset, y0: frame.y0 + inset, y1: frame.y1 - inset };

  const widestEpoch = Math.max(1, ...epochs.filter(Number.isFinite).map((e) => textWidth(String(e))));
  const xAxis = epochAxis(epochs, Math.floor((plot.x1 - plot.x0) / ((widestEpoch + 12) * scale)) + 1);
  const px = (e: number) => plot.x0 + ((e - xAxis.lo) / (xAxis.hi - xAxis.lo)) * (plot.x1 - plot.x0);
  const py = (v: number) => plot.y1 - ((v - yTicks.lo) / (yTicks.hi - yTicks.lo)) * (plot.y1 - plot.y0);

  // Grid, frame, ticks and their labels.
  for (const t of yTicks.ticks) canvas.rect(frame.x0 + 1, Math.round(py(t)), frame.x1 - 1, Math.round(py(t)), GRID);
  for (const e of xAxis.ticks) canvas.rect(Math.round(px(e)), frame.y0 + 1, Math.round(px(e)), frame.y1 - 1, GRID);
  canvas.strokeRect(frame, FRAME);
  yTicks.ticks.forEach((t, i) => {
    const y = Math.round(py(t));
    canvas.rect(frame.x0 - tickLen, y, frame.x0 - 1, y, FRAME);
    canvas.text(yLabels[i], frame.x0 - tickLen - pad, y - (CAP_HEIGHT * scale) / 2, scale, TEXT, 'right');
  });
  for (const e of xAxis.ticks) {
    const x = Math.round(px(e));
    canvas.rect(x, frame.y1 + 1, x, frame.y1 + tickLen, FRAME);
    canvas.text(String(e), x, frame.y1 + tickLen + pad, scale, TEXT, 'center');
  }
  // Axis labels.
  canvas.text('epoch', (frame.x0 + frame.x1) / 2, frame.y1 + tickLen + pad + lineHeight + pad, scale, TEXT, 'center');
  canvas.textUp(panel.label, area.x0 + pad, (frame.y0 + frame.y1) / 2, scale, TEXT);

  // The two series: lines, then markers when the points are far enough apart to tell apart.
  const series = [
    { name: 'train', values: panel.train, color: PLOT_COLORS.train },
    { name: 'val', values: panel.val, color: PLOT_COLORS.val },
  ];
  const spacing = epochs.length > 1 ? (plot.x1 - plot.x0) / (epochs.length - 1) : Infinity;
  const markerRadius = spacing >= 10 * scale ? 2.5 * scale : spacing >= 5 * scale ? 1.5 * scale : 0;
  const allPoints: [number, number][] = [];
  for (const s of series) {
    const pts: [number, number][] = [];
    s.values.forEach((v, i) => { if (Number.isFinite(v) && Number.isFinite(epochs[i])) pts.push([px(epochs[i]), py(v)]); });
    canvas.polyline(pts, 1.25 * scale, s.color);
    const r = pts.length === 1 ? Math.max(markerRadius, 2.5 * scale) : markerRadius;
    if (r > 0) for (const [x, y] of pts) canvas.disc(x, y, r, s.color);
    allPoints.push(...pts);
  }

  drawLegend(canvas, frame, series, allPoints, scale);
}

/** Legend in the inside corner of the frame that covers the fewest points. */
function drawLegend(canvas: Canvas, frame: Box, series: { name: string; color: RGB }[], points: [number, number][], scale: number): void {
  const pad = 5 * scale, swatch = 12 * scale, rowH = (GLYPH_HEIGHT + 3) * scale;
  const w = pad * 2 + swatch + 4 * scale + Math.max(...series.map((s) => textWidth(s.name))) * scale;
  const h = pad * 2 + rowH * series.length - 3 * scale;
  const margin = 8 * scale;
  const corners: [number, number][] = [
    [frame.x1 - margin - w, frame.y0 + margin], [frame.x0 + margin, frame.y0 + margin],
    [frame.x1 - margin - w, frame.y1 - margin - h], [frame.x0 + margin, frame.y1 - margin - h],
  ];
  let best = corners[0], bestHits = Infinity;
  for (const [x, y] of corners) {
    const hits = points.filter(([px, py]) => px >= x - margin && px <= x + w + margin && py >= y - margin && py <= y + h + margin).length;
    if (hits < bestHits) { best = [x, y]; bestHits = hits; }
  }
  const [x, y] = best.map(Math.round);
  canvas.rect(x, y, x + w, y + h, WHITE);
  canvas.strokeRect({ x0: x, y0: y, x1: x + w, y1: y + h }, [200, 200, 200]);
  series.forEach((s, i) => {
    const cy = y + pad + i * rowH + (CAP_HEIGHT * scale) / 2;
    canvas.polyline([[x + pad, cy], [x + pad + swatch, cy]], 1.25 * scale, s.color);
    canvas.disc(x + pad + swatch / 2, cy, 2.5 * scale, s.color);
    canvas.text(s.name, x + pad + swatch + 4 * scale, y + pad + i * rowH, scale, TEXT, 'left');
  });
}

// ---------------------------------------------------------------------------------------------------
// Axes

/** The smallest step from {1, 2, 2.5, 5} x 10^k (integers only for `integer`) that puts at most
 *  maxTicks ticks on [lo, hi], the range first widened to whole steps when `widen`. */
function niceStep(lo: number, hi: number, maxTicks: number, opts: { integer?: boolean; widen?: boolean } = {}): number {
  const count = (step: number) => opts.widen
    ? Math.ceil(hi / step - 1e-9) - Math.floor(lo / step + 1e-9) + 1
    : Math.floor(hi / step + 1e-9) - Math.ceil(lo / step - 1e-9) + 1;
  const mantissas = opts.integer ? [1, 2, 5] : [1, 2, 2.5, 5];
  let mag = 10 ** Math.floor(Math.log10((hi - lo) / Math.max(1, maxTicks)) - 1);
  if (opts.integer) mag = Math.max(1, mag);
  for (;; mag *= 10) {
    for (const m of mantissas) if (count(m * mag) <= Math.max(2, maxTicks)) return m * mag;
  }
}

/** A value axis: the data range widened to whole steps, with the ticks; [0, 1] is the most accuracy needs. */
export function niceAxis(values: number[], maxTicks: number, clamp?: [number, number]): { lo: number; hi: number; step: number; ticks: number[] } {
  let lo = values.length ? Math.min(...values) : 0;
  let hi = values.length ? Math.max(...values) : 1;
  if (hi - lo < 1e-12 * Math.max(1, Math.abs(hi))) {
    // A constant series: show it in the middle of a small range around it.
    const d = Math.abs(hi) > 1e-12 ? Math.abs(hi) * 0.1 : 0.1;
    lo -= d;
    hi += d;
  }
  const step = niceStep(lo, hi, maxTicks, { widen: true });
  lo = Math.floor(lo / step + 1e-9) * step;
  hi = Math.ceil(hi / step - 1e-9) * step;
  if (clamp) {
    lo = Math.max(lo, clamp[0]);
    hi = Math.min(hi, clamp[1]);
  }
  const ticks: number[] = [];
  for (let t = Math.ceil(lo / step - 1e-9); t * step <= hi + step * 1e-9; t++) ticks.push(cleanFloat(t * step));
  return { lo, hi, step, ticks };
}

/** The epoch axis: exactly the epochs' span (half an epoch each side for one), integer ticks. */
function epochAxis(epochs: number[], maxTicks: number): { lo: number; hi: number; ticks: number[] } {
  const finite = epochs.filter(Number.isFinite);
  let lo = finite.length ? Math.min(...finite) : 1;
  let hi = finite.length ? Math.max(...finite) : 1;
  if (hi - lo < 1) {
    lo -= 0.5;
    hi += 0.5;
  }
  const step = niceStep(lo, hi, maxTicks, { integer: true });
  const ticks: number[] = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + 1e-9; t += step) ticks.push(t);
  return { lo, hi, ticks };
}

function cleanFloat(x: number): number {
  return Number(x.toPrecision(12));
}

/** Enough decimals to tell ticks `step` apart, and no more. */
function formatTick(value: number, step: number): string {
  let decimals = 0;
  while (decimals < 8 && Math.abs(step * 10 ** decimals - Math.round(step * 10 ** decimals)) > 1e-6 * 10 ** decimals) decimals++;
  const s = value.toFixed(decimals);
  return /^-0(\.0*)?$/.test(s) ? s.slice(1) : s;
}

// ---------------------------------------------------------------------------------------------------
// Drawing

class Canvas {
  readonly png: PNG;
  private readonly data: Buffer;

  constructor(readonly width: number, readonly height: number) {
    this.png = new PNG({ width, height });
    this.data = this.png.data;
    this.data.fill(255);
  }

  /** Mixes `color` into a pixel with coverage `alpha` in [0, 1]. */
  blend(x: number, y: number, color: RGB, alpha: number): void {
    if (x < 0 || y < 0 || x >= this.width || y >= this.height || alpha <= 0) return;
    const i = (y * this.width + x) * 4;
    const a = Math.min(1, alpha);
    for (let c = 0; c < 3; c++) this.data[i + c] = Math.round(this.data[i + c] * (1 - a) + color[c] * a);
    this.data[i + 3] = 255;
  }

  /** Filled rectangle, inclusive integer corners. */
  rect(x0: number, y0: number, x1: number, y1: number, color: RGB): void {
    for (let y = Math.max(0, Math.round(y0)); y <= Math.min(this.height - 1, Math.round(y1)); y++) {
      for (let x = Math.max(0, Math.round(x0)); x <= Math.min(this.width - 1, Math.round(x1)); x++) this.blend(x, y, color, 1);
    }
  }

  strokeRect(b: Box, color: RGB): void {
    this.rect(b.x0, b.y0, b.x1, b.y0, color);
    this.rect(b.x0, b.y1, b.x1, b.y1, color);
    this.rect(b.x0, b.y0, b.x0, b.y1, color);
    this.rect(b.x1, b.y0, b.x1, b.y1, color);
  }

  /** Anti-aliased polyline: coverage is collected per pixel (max over segments) and blended once,
   *  so that joints are not drawn twice. */
  polyline(points: [number, number][], width: number, color: RGB): void {
    if (points.length < 2) return;
    const half = width / 2;
    const coverage = new Map<number, number>();
    for (let s = 0; s + 1 < points.length; s++) {
      const [ax, ay] = points[s], [bx, by] = points[s + 1];
      const x0 = Math.floor(Math.min(ax, bx) - half - 1), x1 = Math.ceil(Math.max(ax, bx) + half + 1);
      const y0 = Math.floor(Math.min(ay, by) - half - 1), y1 = Math.ceil(Math.max(ay, by) + half + 1);
      for (let y = Math.max(0, y0); y <= Math.min(this.height - 1, y1); y++) {
        for (let x = Math.max(0, x0); x <= Math.min(this.width - 1, x1); x++) {
          const cov = clamp01(half + 0.5 - segmentDistance(x + 0.5, y + 0.5, ax, ay, bx, by));
          if (cov <= 0) continue;
          const key = y * this.width + x;
          if (cov > (coverage.get(key) ?? 0)) coverage.set(key, cov);
        }
      }
    }
    for (const [key, cov] of coverage) this.blend(key % this.width, Math.floor(key / this.width), color, cov);
  }

  /** Anti-aliased filled circle. */
  disc(cx: number, cy: number, r: number, color: RGB): void {
    for (let y = Math.floor(cy - r - 1); y <= Math.ceil(cy + r + 1); y++) {
      for (let x = Math.floor(cx - r - 1); x <= Math.ceil(cx + r + 1); x++) {
        this.blend(x, y, color, clamp01(r + 0.5 - Math.hypot(x + 0.5 - cx, y + 0.5 - cy)));
      }
    }
  }

  /** Text with its top at y; `bold` draws each pixel twice, one pixel apart. */
  text(s: string, x: number, y: number, scale: number, color: RGB, align: 'left' | 'center' | 'right', bold = false): void {
    const w = textWidth(s) * scale + (bold ? 1 : 0);
    let cx = Math.round(align === 'left' ? x : align === 'center' ? x - w / 2 : x - w);
    const top = Math.round(y);
    for (const ch of s) {
      const g = glyph(ch);
      g.rows.forEach((row, gy) => row.forEach((on, gx) => {
        if (!on) return;
        const px = cx + gx * scale, py = top + gy * scale;
        this.rect(px, py, px + scale - 1 + (bold ? 1 : 0), py + scale - 1, color);
      }));
      cx += (g.width + 1) * scale;
    }
  }

  /** Text turned a quarter to the left (read bottom to top), centred on cy, its left edge (the glyph tops) at x. */
  textUp(s: string, x: number, cy: number, scale: number, color: RGB): void {
    let along = Math.round(cy + (textWidth(s) * scale) / 2);
    for (const ch of s) {
      const g = glyph(ch);
      g.rows.forEach((row, gy) => row.forEach((on, gx) => {
        if (!on) return;
        const px = Math.round(x) + gy * scale, py = along - (gx + 1) * scale;
        this.rect(px, py, px + scale - 1, py + scale - 1, color);
      }));
      along -= (g.width + 1) * scale;
    }
  }

  toPNG(): Uint8Array {
    const buf = PNG.sync.write(this.png);
    return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  }
}

function clamp01(v: number): number {
  return v < 0 ? 0 : v > 1 ? 1 : v;
}

function segmentDistance(x: number, y: number, ax: number, ay: number, bx: number, by: number): number {
  const dx = bx - ax, dy = by - ay;
  const len2 = dx * dx + dy * dy;
  const t = len2 === 0 ? 0 : clamp01(((x - ax) * dx + (y - ay) * dy) / len2);
  return Math.hypot(x - (ax + t * dx), y - (ay + t * dy));
}
