// The training/evaluation data loader: batches of normalised float32 NCHW images with labels.
//
// Pipeline: every image is decoded once (in worker threads, a few batches ahead of the consumer),
// resized to a square `cacheSize` uint8 RGB image and kept in memory and, with `cacheDir`, on disk
// (see cache.ts), so epochs after the first and later runs decode nothing. Each batch is then built
// in the main thread from those small images: random resized crop + flip (+ jitter) and resize to
// `imageSize`, normalisation. That step costs ~0.05 ms per image at 32 px (bench/data.ts: ~20k
// images/s on one core), a few ms per batch next to a training step of a second or more, so
// moving it to workers would only add copies. Memory: items x cacheSize^2 x 3 bytes (2,000 photos
// at 64 px: 25 MB).
//
// Randomness: the epoch's order comes from (seed, epoch) and each image's augmentation from
// (seed, epoch, item index), so the batches are the same whether the cache was cold or warm and
// however the workers were scheduled.
//
// Undecodable files (empty, truncated, not an image) are dropped: a batch is filled from the next
// items instead, so only the final batch is short. After the first complete pass one warning lists
// them; `skipped` keeps them for the trainer's summary.
import { statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { DatasetError, type DataItem } from './layouts.ts';
import { defaultCacheSize, resolveAugment, sampleToTensor, type AugmentOptions, type ResolvedAugment } from './augment.ts';
import { ImageCache, commonDir, type CacheContents } from './cache.ts';
import { WorkerPool } from './pool.ts';
import { runDecodeJob, type DecodeJobResult } from './tasks.ts';
import { mixSeed, rng, shuffleInPlace } from './random.ts';
import type { DecodeLimits } from './decode.ts';

export interface ImageLoaderOptions {
  items: DataItem[];
  classes: string[];
  /** Side of the square images in a batch. */
  imageSize: number;
  /** Per-channel normalisation: (pixel/255 - mean) / std. */
  mean: ArrayLike<number>;
  std: ArrayLike<number>;
  batchSize: number;
  /** Shuffle each epoch (seeded by seed and epoch). Default true. */
  shuffle?: boolean;
  seed?: number;
  /** Training augmentation; `true` = random resized crop (scale 0.08..1, ratio 3/4..4/3) + hflip. */
  augment?: boolean | AugmentOptions;
  /**
   * Without a random crop: keep this centred fraction of each side before resizing (evaluation's
   * centre crop, `crop_pct`). Default 1 (the whole image).
   */
  centerCrop?: number;
  /**
   * Side of the cached images. Default: imageSize without augmentation or centre crop; with them
   * min(2*imageSize, max(imageSize, 256)), so random crops are cut from a sharper image
   * (32 -> 64, 64 -> 128, 224 -> 256). Loaders that should share one cache need the same value.
   */
  cacheSize?: number;
  /** Folder for the on-disk cache; without it images are cached in memory only. */
  cacheDir?: string | null;
  /** Names the data set in the cache (default: the items' common folder). */
  cacheKey?: string;
  /** Decode threads; 0 decodes in the main thread. Default max(1, min(4, cores - 1)). */
  workers?: number;
  /** Batches decoded ahead of the consumer while the cache is cold. Default 2. */
  prefetch?: number;
  /** Drop the final short batch. Default false. */
  dropLast?: boolean;
  decodeLimits?: DecodeLimits;
  /** Where warnings go (default console.warn). */
  onWarning?: (message: string) => void;
}

export interface Batch {
  /** [n, 3, imageSize, imageSize] float32, normalised. */
  pixels: Float32Array;
  labels: Int32Array;
  paths: string[];
}

export interface SkippedFile {
  path: string;
  reason: string;
}

export interface LoaderStats {
  /** Files decoded by this loader (successes and failures). */
  decoded: number;
  /** Of those, decoded in worker threads. */
  decodedInWorkers: number;
  /** Images and known failures taken from the on-disk cache. */
  fromDiskCache: number;
}

export { defaultCacheSize } from './augment.ts';

/** Files per worker job: small enough to balance the workers, large enough to amortise messages. */
const CHUNK = 16;

export class ImageLoader {
  readonly items: DataItem[];
  readonly classes: string[];
  readonly imageSize: number;
  readonly cacheSize: number;
  readonly batchSize: number;
  readonly stats: LoaderStats = { decoded: 0, decodedInWorkers: 0, fromDiskCache: 0 };
  private readonly opts: ImageLoaderOptions;
  private readonly aug: ResolvedAugment | null;
  private readonly images: (Uint8Array | null)[];
  private readonly failed = new Map<number, string>();
  private stamps: { size: number; mtimeMs: number }[] = [];
  private cache: ImageCache | null = null;
  private pool: WorkerPool | null = null;
  private ready: Promise<void> | null = null;
  private dirty = false;
  private warned = false;
  private closed = false;
  private jobId = 0;
  private readonly warn: (m: string) => void;

  constructor(opts: ImageLoaderOptions) {
    if (opts.items.length === 0) throw new Error('ImageLoader: no items (empty data set)');
    if (!(Number.isInteger(opts.imageSize) && opts.imageSize > 0)) throw new RangeError(`imageSize must be a positive integer, got ${opts.imageSize}`);
    if (!(Number.isInteger(opts.batchSize) && opts.batchSize > 0)) throw new RangeError(`batchSize must be a positive integer, got ${opts.batchSize}`);
    if (opts.mean.length !== 3 || opts.std.length !== 3) throw new RangeError('mean and std need 3 values (R, G, B)');
    for (const s of Array.from(opts.std)) if (!(s > 0)) throw new RangeError(`std values must be > 0, got ${s}`);
    for (const it of opts.items) {
      if (!(Number.isInteger(it.label) && it.label >= 0 && it.label < opts.classes.length)) {
        throw new RangeError(`label ${it.label} of ${it.path} is not an index into ${opts.classes.length} classes`);
      }
    }
    this.opts = opts;
    this.items = opts.items;
    this.classes = opts.classes;
    this.imageSize = opts.imageSize;
    this.batchSize = opts.batchSize;
    this.aug = resolveAugment(opts.augment);
    const crop = opts.centerCrop ?? 1;
    if (!(crop > 0 && crop <= 1)) throw new RangeError(`centerCrop must be in (0, 1], got ${crop}`);
    this.cacheSize = opts.cacheSize ?? defaultCacheSize(opts.imageSize, !!this.aug || crop < 1);
    this.images = new Array(opts.items.length).fill(null);
    this.warn = opts.onWarning ?? ((m) => console.warn(m));
  }

  /** Images not known to be undecodable (exact once a full pass has run). */
  get size(): number {
    return this.items.length - this.failed.size;
  }

  /** Batches in an epoch, by what is known now. */
  get batchesPerEpoch(): number {
    return this.opts.dropLast ? Math.floor(this.size / this.batchSize) : Math.ceil(this.size / this.batchSize);
  }

  /** Files skipped because they could not be read or decoded. */
  get skipped(): SkippedFile[] {
    return [...this.failed].sort((a, b) => a[0] - b[0]).map(([i, reason]) => ({ path: this.items[i].path, reason }));
  }

  /** Usable images per class (exact once a full pass or prepare() has run). */
  get classCounts(): number[] {
    const counts = new Array<number>(this.classes.length).fill(0);
    this.items.forEach((it, i) => {
      if (!this.failed.has(i)) counts[it.label]++;
    });
    return counts;
  }

  /** Images decoded or cached so far. */
  get cachedCount(): number {
    return this.images.reduce((n, im) => n + (im ? 1 : 0), 0);
  }

  /**
   * Decode everything not cached yet (using the workers) without building batches, e.g. to show
   * a progress bar and exact counts before training. Optional: batches() does the same lazily.
   */
  async prepare(onProgress?: (done: number, total: number) => void): Promise<{ images: number; skipped: SkippedFile[] }> {
    await this.init();
    const order = this.items.map((_, i) => i).filter((i) => !this.failed.has(i) && !this.images[i]);
    let done = 0;
    try {
      for await (const _ of this.decodedInOrder(order)) onProgress?.(++done, order.length);
    } finally {
      this.finishPass(true);
    }
    return { images: this.size, skipped: this.skipped };
  }

  /** One epoch of batches, shuffled by (seed, epoch) when shuffle is on; the last may be short. */
  async *batches(epoch: number): AsyncGenerator<Batch> {
    await this.init();
    // Shuffle all items, then drop known failures: the order must not depend on what is known yet.
    let order = this.items.map((_, i) => i);
    if (this.opts.shuffle ?? true) shuffleInPlace(order, rng(mixSeed(this.opts.seed ?? 0, epoch, 0x0de7)));
    order = order.filter((i) => !this.failed.has(i));

    const S = this.imageSize, per = 3 * S * S, bs = this.batchSize;
    const seed = this.opts.seed ?? 0;
    const scratch = new Float32Array(per);
    let pixels = new Float32Array(bs * per), labels = new Int32Array(bs), paths: string[] = [];
    let complete = false;
    try {
      for await (const index of this.decodedInOrder(order)) {
        const img = this.images[index];
        if (!img) continue; // undecodable: the next good item takes its place
        const n = paths.length;
        const r = this.aug ? rng(mixSeed(seed, epoch, index)) : null;
        sampleToTensor({ width: this.cacheSize, height: this.cacheSize, data: img }, S, this.opts.mean, this.opts.std, pixels, n * per, this.aug, r, scratch, this.opts.centerCrop);
        labels[n] = this.items[index].label;
        paths.push(this.items[index].path);
        if (paths.length === bs) {
          yield { pixels, labels, paths };
          pixels = new Float32Array(bs * per);
          labels = new Int32Array(bs);
          paths = [];
        }
      }
      complete = true;
      const n = paths.length;
      if (n > 0 && !this.opts.dropLast) yield { pixels: pixels.slice(0, n * per), labels: labels.slice(0, n), paths };
    } finally {
      this.finishPass(complete);
    }
  }

  /** Stop the workers and flush the cache. The loader cannot be used afterwards. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.dirty) this.saveCache();
    await this.pool?.close();
    this.pool = null;
  }

  private init(): Promise<void> {
    if (this.closed) return Promise.reject(new Error('ImageLoader is closed'));
    this.ready ??= Promise.resolve().then(() => this.initNow());
    return this.ready;
  }

  private initNow(): void {
    this.stamps = this.items.map((it, i) => {
      try {
        const st = statSync(it.path);
        return { size: st.size, mtimeMs: st.mtimeMs };
      } catch (e) {
        this.failed.set(i, `unreadable: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
        return { size: -1, mtimeMs: -1 };
      }
    });
    const dir = this.opts.cacheDir;
    if (!dir) return;
    this.cache = new ImageCache(dir, this.opts.cacheKey ?? commonDir(this.items.map((it) => it.path)), this.cacheSize);
    const { contents, problem } = this.cache.read();
    if (problem) this.warn(`data loader: ${problem}`);
    if (!contents) return;
    this.items.forEach((it, i) => {
      const st = this.stamps[i];
      const hit = contents.images.get(it.path);
      if (hit && hit.size === st.size && hit.mtimeMs === st.mtimeMs) {
        this.images[i] = hit.data;
        this.stats.fromDiskCache++;
        return;
      }
      const bad = contents.failed.get(it.path);
      if (bad && bad.size === st.size && bad.mtimeMs === st.mtimeMs && !this.failed.has(i)) {
        this.failed.set(i, bad.reason);
        this.stats.fromDiskCache++;
      }
    });
  }

  /**
   * Yield the indices of `order` in order, each once its image is in memory (or known to be
   * undecodable), decoding up to `prefetch` batches ahead in the workers.
   */
  private async *decodedInOrder(order: number[]): AsyncGenerator<number> {
    const ahead = Math.max(1, Math.ceil(((this.opts.prefetch ?? 2) * this.batchSize) / CHUNK));
    const inFlight: { indices: number[]; done: Promise<void> }[] = [];
    let pos = 0;
    const submitNext = () => {
      const indices: number[] = [];
      const todo: number[] = [];
      while (pos < order.length && todo.length < CHUNK) {
        const i = order[pos++];
        indices.push(i);
        if (!this.images[i] && !this.failed.has(i)) todo.push(i);
      }
      const done = todo.length === 0 ? Promise.resolve() : this.decode(todo);
      done.catch(() => {}); // an abandoned epoch must not leave an unhandled rejection
      inFlight.push({ indices, done });
    };
    while (pos < order.length || inFlight.length > 0) {
      while (pos < order.length && inFlight.length < ahead) submitNext();
      const head = inFlight.shift()!;
      await head.done;
      for (const i of head.indices) yield i;
    }
  }

  /** Decode the given items into this.images / this.failed. */
  private async decode(indices: number[]): Promise<void> {
    const job = { id: this.jobId++, paths: indices.map((i) => this.items[i].path), size: this.cacheSize, limits: this.opts.decodeLimits };
    let res: DecodeJobResult;
    const workers = this.opts.workers ?? Math.max(1, Math.min(4, availableParallelism() - 1));
    if (workers <= 0) {
      await new Promise((r) => setImmediate(r)); // keep the event loop turning between chunks
      res = runDecodeJob(job);
    } else {
      if (!this.pool) {
        this.pool = new WorkerPool(workers);
        this.pool.onWarning = this.warn;
      }
      res = await this.pool.run(job);
    }
    if (this.closed) return;
    res.results.forEach((r, k) => {
      const i = indices[k];
      this.stats.decoded++;
      if (res.thread === 'worker') this.stats.decodedInWorkers++;
      if (r.ok) this.images[i] = r.data;
      else this.failed.set(i, r.reason);
    });
    this.dirty = true;
  }

  /** After a pass: persist new work, warn once about skipped files, reject an empty data set. */
  private finishPass(complete: boolean): void {
    if (this.dirty && !this.closed) this.saveCache();
    if (!complete) return;
    if (this.size === 0) {
      const first = this.skipped[0];
      throw new Error(`no decodable images among ${this.items.length} files (e.g. ${first.path}: ${first.reason})`);
    }
    if (!this.warned && this.failed.size > 0) {
      this.warned = true;
      const list = this.skipped;
      const shown = list.slice(0, 100).map((s) => `  ${s.path}: ${s.reason}`);
      if (list.length > 100) shown.push(`  ... and ${list.length - 100} more`);
      this.warn(`Skipped ${list.length} undecodable image file(s) of ${this.items.length}:\n${shown.join('\n')}`);
    }
  }

  private saveCache(): void {
    this.dirty = false;
    if (!this.cache) return;
    const contents: CacheContents = { images: new Map(), failed: new Map() };
    this.items.forEach((it, i) => {
      const st = this.stamps[i];
      const img = this.images[i];
      if (img) contents.images.set(it.path, { ...st, data: img });
      else if (this.failed.has(i) && st.size >= 0) contents.failed.set(it.path, { ...st, reason: this.failed.get(i)! });
    });
    try {
      this.cache.write(contents);
    } catch (e) {
      this.warn(`data loader: could not write the image cache in ${this.cache.dir}: ${(e as Error).message}`);
    }
  }
}

/** Warn when the largest training class has at least this many times the images of the smallest. */
const IMBALANCE_RATIO = 5;

/**
 * After prepare(): every class needs a usable training image (skipped files do not count), else a
 * DatasetError naming the class and one of its files; a strong imbalance, and a class that the
 * validation set lacks, are warnings (val_acc is then easy to misread).
 */
export function checkClassCounts(train: ImageLoader, val: ImageLoader | null, warn: (message: string) => void): void {
  const counts = train.classCounts;
  const empty = train.classes.filter((_, c) => counts[c] === 0);
  if (empty.length > 0) {
    const skipped = new Map(train.skipped.map((s) => [s.path, s.reason]));
    const example = (c: string) => {
      const it = train.items.find((x) => train.classes[x.label] === c)!;
      return `${it.path}: ${skipped.get(it.path)}`;
    };
    throw new DatasetError(commonDir(train.items.map((it) => it.path)), empty.map((c) =>
      `class ${c} has no usable training image (all ${train.items.filter((x) => train.classes[x.label] === c).length} of its files were skipped, e.g. ${example(c)})`,
    ).join('; ') + '; a classifier needs images of every class: fix or replace those files, or remove the class folder');
  }
  const per = train.classes.map((c, i) => `${c} ${counts[i]}`).join(', ');
  if (Math.max(...counts) >= IMBALANCE_RATIO * Math.min(...counts)) {
    warn(`The training classes are strongly imbalanced (${per}): a model can score well by favouring the large class, so compare val_acc with the largest class's share, or balance the data`);
  }
  if (val) {
    const v = val.classCounts;
    const missing = val.classes.filter((_, c) => v[c] === 0);
    if (missing.length > 0) warn(`The validation set has no usable image of ${missing.join(', ')}, so val_acc does not measure ${missing.length === 1 ? 'that class' : 'those classes'}`);
  }
}
