import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { PNG } from 'pngjs';
import { renderTrainingPlot, PLOT_COLORS, niceAxis, type EpochMetrics } from '../src/train/plot.ts';

/** A plausible run: loss falling, accuracy rising, val a bit worse. */
function history(n: number): EpochMetrics[] {
  return Array.from({ length: n }, (_, i) => ({
    epoch: i + 1,
    loss: 0.7 * Math.exp(-i / 5) + 0.15,
    acc: 0.55 + 0.4 * (1 - Math.exp(-i / 4)),
    val_loss: 0.68 * Math.exp(-i / 7) + 0.3 + 0.02 * Math.sin(i),
    val_acc: 0.52 + 0.3 * (1 - Math.exp(-i / 5)) + 0.02 * Math.cos(i),
  }));
}

/** Decodes the PNG and counts pixels of each plot colour in the left and right halves. */
function inspect(bytes: Uint8Array, width: number, height: number) {
  assert.equal([...bytes.subarray(0, 8)], [137, 80, 78, 71, 13, 10, 26, 10], 'PNG signature');
  const png = PNG.sync.read(Buffer.from(bytes));
  assert.is(png.width, width);
  assert.is(png.height, height);
  const count = { train: [0, 0], val: [0, 0], nonWhite: 0 };
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 4;
      const [r, g, b] = [png.data[i], png.data[i + 1], png.data[i + 2]];
      if (r !== 255 || g !== 255 || b !== 255) count.nonWhite++;
      const half = x < width / 2 ? 0 : 1;
      if (r === PLOT_COLORS.train[0] && g === PLOT_COLORS.train[1] && b === PLOT_COLORS.train[2]) count.train[half]++;
      if (r === PLOT_COLORS.val[0] && g === PLOT_COLORS.val[1] && b === PLOT_COLORS.val[2]) count.val[half]++;
    }
  }
  return count;
}

function assertDrawn(c: ReturnType<typeof inspect>, minLinePixels: number): void {
  assert.ok(c.nonWhite > 2000, `not blank (${c.nonWhite} non-white pixels)`);
  for (const s of ['train', 'val'] as const) {
    for (const half of [0, 1]) assert.ok(c[s][half] >= minLinePixels, `${s} pixels in panel ${half}: ${c[s][half]}`);
  }
}

test('12 epochs at the default size: both series in both panels', () => {
  const bytes = renderTrainingPlot(history(12));
  assert.instance(bytes, Uint8Array);
  assertDrawn(inspect(bytes, 1000, 420), 200);
});

test('the size asked, a custom title, small images', () => {
  assertDrawn(inspect(renderTrainingPlot(history(5), { width: 640, height: 300, title: 'run 7' }), 640, 300), 60);
  assertDrawn(inspect(renderTrainingPlot(history(5), { width: 320, height: 160 }), 320, 160), 10);
  assert.throws(() => renderTrainingPlot(history(3), { width: 50, height: 40 }), /too small/);
});

test('one epoch, constant series, 150 epochs, missing val values, no epochs', () => {
  // One epoch: markers only.
  assertDrawn(inspect(renderTrainingPlot(history(1)), 1000, 420), 20);
  // Constant series (val drawn over train in the same place): the val line is there and nothing is NaN.
  const flat = Array.from({ length: 6 }, (_, i) => ({ epoch: i + 1, loss: 0.6931, acc: 0.5, val_loss: 0.7, val_acc: 0.5 }));
  const c = inspect(renderTrainingPlot(flat), 1000, 420);
  assert.ok(c.val[0] > 200 && c.val[1] > 200 && c.train[0] > 200, JSON.stringify(c));
  // Many epochs (no markers, lines only).
  const many = Array.from({ length: 150 }, (_, i) => ({ epoch: i + 1, loss: 1 / (i + 2), acc: 1 - 0.5 / (i + 1), val_loss: 1.2 / (i + 2), val_acc: 0.9 - 0.4 / (i + 1) }));
  assertDrawn(inspect(renderTrainingPlot(many), 1000, 420), 200);
  // Validation only every other epoch (NaN in between), and an Inf loss: skipped, not drawn as garbage.
  const sparse = history(10).map((h, i) => (i % 2 ? { ...h, val_loss: NaN, val_acc: NaN } : h));
  sparse[3].loss = Infinity;
  assertDrawn(inspect(renderTrainingPlot(sparse), 1000, 420), 100);
  // No epochs yet: empty axes, still a PNG of the size asked.
  const empty = inspect(renderTrainingPlot([], { width: 600, height: 300 }), 600, 300);
  assert.ok(empty.nonWhite > 1000 && empty.train[0] > 0, 'axes, labels and the legend');
});

test('nice ticks: round steps, widened range, accuracy within [0, 1]', () => {
  const a = niceAxis([0.23, 0.97], 6);
  assert.equal([a.lo, a.hi, a.step], [0.2, 1, 0.2]);
  assert.equal(a.ticks, [0.2, 0.4, 0.6, 0.8, 1]);
  const acc = niceAxis([0.55, 0.999], 6, [0, 1]);
  assert.ok(acc.hi <= 1 && acc.lo >= 0, JSON.stringify(acc));
  const flat = niceAxis([0.5, 0.5], 5);
  assert.ok(flat.lo < 0.5 && flat.hi > 0.5 && flat.ticks.length >= 2, JSON.stringify(flat));
  const zero = niceAxis([0, 0], 5);
  assert.ok(zero.lo < 0 && zero.hi > 0, JSON.stringify(zero));
});

test.run();
