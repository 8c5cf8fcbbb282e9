// Data pipeline throughput on real photos: decode + resize, cold (workers) and from the warm cache.
//   npm run bench:data -- [N=500] [imageSize=32]
// N photos: the first N/2 of each class folder of ../shared/data/catsdogs/train (read in place).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir, availableParallelism, loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { scanDataset } from '../src/data/layouts.ts';
import { decodeFile } from '../src/data/decode.ts';
import { resizeSquare } from '../src/data/resize.ts';
import { ImageLoader } from '../src/data/loader.ts';

const N = Number(process.argv[2] ?? 500);
const imageSize = Number(process.argv[3] ?? 32);
const trainDir = fileURLToPath(new URL('../../shared/data/catsdogs/train', import.meta.url));
const ds = scanDataset(trainDir);
const items = ds.classes.flatMap((_, c) => ds.items.filter((it) => it.label === c).slice(0, Math.ceil(N / ds.classes.length))).slice(0, N);
const mean = [0.5, 0.5, 0.5], std = [0.5, 0.5, 0.5];
const rows: [string, string][] = [];
const rate = (n: number, ms: number) => `${((n / ms) * 1000).toFixed(0)} images/s  (${(ms / n).toFixed(2)} ms/image)`;

console.log(`${items.length} photos from ${trainDir}, image_size ${imageSize}, ${availableParallelism()} cores, load average ${loadavg()[0].toFixed(1)} (shared machine: compare rows of one run)`);

// Single thread, no loader: decode alone, then decode + resize.
{
  let t = performance.now(), pixels = 0;
  for (const it of items) pixels += decodeFile(it.path).width;
  rows.push(['decode only, main thread', rate(items.length, performance.now() - t)]);
  t = performance.now();
  for (const it of items) resizeSquare(decodeFile(it.path), 2 * imageSize);
  rows.push([`decode + resize to ${2 * imageSize}, main thread`, rate(items.length, performance.now() - t)]);
  void pixels;
}

async function epoch(loader: ImageLoader, e: number): Promise<number> {
  const t = performance.now();
  let n = 0;
  for await (const b of loader.batches(e)) n += b.labels.length;
  if (n !== items.length - loader.skipped.length) throw new Error(`epoch saw ${n} images`);
  return performance.now() - t;
}

for (const workers of [0, 1, 2]) {
  const cacheDir = mkdtempSync(join(tmpdir(), 'vitcats-bench-'));
  try {
    const make = () => new ImageLoader({ items, classes: ds.classes, imageSize, mean, std, batchSize: 64, seed: 1, augment: true, cacheDir, workers, onWarning: () => {} });
    const cold = make();
    const tCold = await epoch(cold, 0);
    rows.push([`cold epoch (decode+resize+augment), workers=${workers}`, rate(items.length, tCold)]);
    if (workers === 2) {
      const tMem = await epoch(cold, 1);
      rows.push(['warm epoch, in memory (crop+flip+normalise, main thread)', rate(items.length, tMem)]);
    }
    await cold.close();
    if (workers === 2) {
      const warm = make();
      const tDisk = await epoch(warm, 1);
      if (warm.stats.decoded !== 0) throw new Error('warm cache decoded images');
      rows.push(['warm epoch, new loader from the disk cache (incl. loading it)', rate(items.length, tDisk)]);
      await warm.close();
      const plain = new ImageLoader({ items, classes: ds.classes, imageSize, mean, std, batchSize: 64, shuffle: false, cacheDir, cacheSize: 2 * imageSize, onWarning: () => {} });
      await epoch(plain, 0);
      rows.push(['warm epoch, no augmentation (resize+normalise)', rate(items.length, await epoch(plain, 1))]);
      await plain.close();
    }
  } finally {
    rmSync(cacheDir, { recursive: true, force: true });
  }
}

const w = Math.max(...rows.map((r) => r[0].length));
for (const [k, v] of rows) console.log(`${k.padEnd(w)}  ${v}`);
