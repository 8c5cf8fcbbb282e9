// Layouts, the loader (batches, order, skipped files, workers) and the on-disk cache.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, realpathSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { scanDataset, DatasetError, type DataItem } from '../src/data/layouts.ts';
import { assertSeparateDatasets } from '../src/data/split.ts';
import { ImageLoader, checkClassCounts, type Batch, type ImageLoaderOptions } from '../src/data/loader.ts';
import { encodePng, patternJpeg, solidJpeg, tempDir, writeFile } from './data-fixtures.ts';

const COLORS: [number, number, number][] = [[220, 30, 30], [30, 200, 40], [20, 40, 210]];
const mean = [0.5, 0.5, 0.5], std = [0.25, 0.25, 0.25];

async function collect(loader: ImageLoader, epoch: number): Promise<Batch[]> {
  const out: Batch[] = [];
  for await (const b of loader.batches(epoch)) out.push(b);
  return out;
}

/** A class-folder set: n images per class, each one flat colour of its class. */
function makeClassFolders(root: string, perClass: number, names = ['ant', 'bee', 'cow']): void {
  names.forEach((name, c) => {
    for (let i = 0; i < perClass; i++) writeFile(join(root, name, `${name}${i}.jpg`), solidJpeg(24 + i, 20, COLORS[c % 3]));
  });
}

test('layout: one folder per class (any number, sorted names, nested, non-images ignored)', () => {
  const { dir, cleanup } = tempDir('layout-folders');
  try {
    makeClassFolders(dir, 2, ['zebra', 'ant', 'moose']);
    writeFile(join(dir, 'ant', 'deeper', 'x.PNG'), encodePng({ width: 1, height: 1, colorType: 0, bitDepth: 8, samples: [1] }));
    writeFile(join(dir, 'ant', 'Thumbs.db'), 'junk');
    writeFile(join(dir, 'notes.txt'), 'hello');
    writeFile(join(dir, 'empty-folder', 'readme.md'), 'nothing');
    const ds = scanDataset(dir);
    assert.is(ds.layout, 'class-folders');
    assert.equal(ds.classes, ['ant', 'moose', 'zebra']);
    assert.is(ds.items.length, 7);
    assert.equal(ds.items.filter((it) => it.label === 0).length, 3);
    for (const it of ds.items) assert.ok(it.path.includes(`/${ds.classes[it.label]}/`), it.path);
  } finally {
    cleanup();
  }
});

test("layout: Kaggle's flat folder, label from the prefix before the first dot", () => {
  const { dir, cleanup } = tempDir('layout-flat');
  try {
    for (const name of ['cat.1.jpg', 'dog.45.jpg', 'cat.10.jpg', 'dog.2.jpeg', 'cat.3.extra.png', 'readme.txt']) writeFile(join(dir, name), solidJpeg(8, 8, [1, 2, 3]));
    const ds = scanDataset(dir);
    assert.is(ds.layout, 'kaggle-flat');
    assert.equal(ds.classes, ['cat', 'dog']);
    assert.is(ds.items.length, 5);
    for (const it of ds.items) assert.ok(it.path.split('/').pop()!.startsWith(ds.classes[it.label] + '.'), it.path);
    const unlabelled = tempDir('layout-unlabelled');
    try {
      writeFile(join(unlabelled.dir, '1.jpg'), solidJpeg(8, 8, [1, 2, 3]));
      assert.throws(() => scanDataset(unlabelled.dir), (e: unknown) => e instanceof DatasetError && e.message.includes(unlabelled.dir) && /no labels/.test(e.message));
    } finally {
      unlabelled.cleanup();
    }
  } finally {
    cleanup();
  }
});

test("layout: Microsoft's PetImages/{Cat,Dog}, from above or at PetImages", () => {
  const { dir, cleanup } = tempDir('layout-pet');
  try {
    for (const c of ['Cat', 'Dog']) for (let i = 0; i < 3; i++) writeFile(join(dir, 'PetImages', c, `${i}.jpg`), solidJpeg(8, 8, [9, 9, 9]));
    writeFile(join(dir, 'PetImages', 'Cat', 'Thumbs.db'), 'x');
    writeFile(join(dir, 'readme[1].txt'), 'license');
    for (const root of [dir, join(dir, 'PetImages')]) {
      const ds = scanDataset(root);
      assert.is(ds.layout, 'petimages');
      assert.equal(ds.classes, ['Cat', 'Dog']);
      assert.is(ds.items.length, 6);
    }
  } finally {
    cleanup();
  }
});

test('layout: links neither loop nor leave the class folder; a file (by real path) is listed once', () => {
  const { dir, cleanup } = tempDir('layout-links');
  try {
    makeClassFolders(dir, 3, ['cats', 'dogs']);
    writeFile(join(dir, 'cats', 'nested', 'deep.jpg'), solidJpeg(8, 8, COLORS[0]));
    symlinkSync('..', join(dir, 'cats', 'up')); // the loop: leads back to cats/ and into dogs/
    symlinkSync('.', join(dir, 'cats', 'self')); // a loop inside the class folder
    symlinkSync('nested', join(dir, 'cats', 'again')); // a second way into a folder
    symlinkSync('cats0.jpg', join(dir, 'cats', 'copy.jpg')); // a second name for a file
    symlinkSync(join(dir, 'dogs'), join(dir, 'cats', 'dog-photos')); // out of the class folder
    const ds = scanDataset(dir);
    assert.equal(ds.classes, ['cats', 'dogs']);
    const names = (label: number) => ds.items.filter((it) => it.label === label).map((it) => it.path.slice(dir.length + 1)).sort();
    assert.equal(names(0), ['cats/cats0.jpg', 'cats/cats1.jpg', 'cats/cats2.jpg', 'cats/nested/deep.jpg']);
    assert.equal(names(1), ['dogs/dogs0.jpg', 'dogs/dogs1.jpg', 'dogs/dogs2.jpg']);
    const real = ds.items.map((it) => realpathSync(it.path));
    assert.is(new Set(real).size, real.length, 'each real file once');
    assert.equal(ds.realPaths, real);
    assert.is(ds.warnings.length, 1, ds.warnings.join('\n'));
    for (const part of [join(dir, 'cats', 'up'), join(dir, 'cats', 'dog-photos'), 'outside the class folder']) assert.ok(ds.warnings[0].includes(part), ds.warnings[0]);
    // Links that stay inside the class folder are followed, once.
    const inside = tempDir('layout-links-inside');
    try {
      makeClassFolders(inside.dir, 1, ['a', 'b']);
      writeFile(join(inside.dir, 'a', 'store', 'x.jpg'), solidJpeg(8, 8, COLORS[0]));
      symlinkSync(join(inside.dir, 'a', 'store'), join(inside.dir, 'a', 'link'));
      const d2 = scanDataset(inside.dir);
      assert.equal(d2.items.map((it) => it.path.slice(inside.dir.length + 1)), ['a/a0.jpg', 'a/store/x.jpg', 'b/b0.jpg']);
      assert.equal(d2.warnings, []);
    } finally {
      inside.cleanup();
    }
  } finally {
    cleanup();
  }
});

test('layout: one file in two classes (through a link) is an error naming both', () => {
  for (const kaggle of [false, true]) {
    const { dir, cleanup } = tempDir('layout-two-labels');
    try {
      if (kaggle) {
        for (const name of ['cat.1.jpg', 'cat.2.jpg', 'dog.1.jpg']) writeFile(join(dir, name), solidJpeg(8, 8, [1, 2, 3]));
        symlinkSync('cat.1.jpg', join(dir, 'dog.2.jpg'));
      } else {
        makeClassFolders(dir, 2, ['cats', 'dogs']);
        symlinkSync(join(dir, 'cats', 'cats1.jpg'), join(dir, 'dogs', 'dogs9.jpg'));
      }
      const [a, b] = kaggle ? ['cat.1.jpg', 'dog.2.jpg'] : ['cats/cats1.jpg', 'dogs/dogs9.jpg'];
      assert.throws(() => scanDataset(dir), (e: unknown) => e instanceof DatasetError
        && e.message.includes(join(dir, a)) && e.message.includes(join(dir, b)) && /same file/.test(e.message));
    } finally {
      cleanup();
    }
  }
});

test('a separate val_dir sharing real files with train_dir is an error naming them', () => {
  const { dir, cleanup } = tempDir('layout-val-overlap');
  try {
    makeClassFolders(join(dir, 'train'), 3, ['cats', 'dogs']);
    makeClassFolders(join(dir, 'val'), 1, ['cats', 'dogs']);
    const train = scanDataset(join(dir, 'train'));
    assertSeparateDatasets(train, scanDataset(join(dir, 'val'))); // disjoint: fine
    symlinkSync(join(dir, 'train', 'dogs', 'dogs2.jpg'), join(dir, 'val', 'dogs', 'dogs7.jpg'));
    const check = (valDir: string, ...named: string[]) => assert.throws(() => assertSeparateDatasets(train, scanDataset(valDir)),
      (e: unknown) => e instanceof DatasetError && named.every((n) => e.message.includes(n)) && /validation/.test(e.message) && /val_split/.test(e.message));
    check(join(dir, 'val'), join(dir, 'val', 'dogs', 'dogs7.jpg'), join(dir, 'train', 'dogs', 'dogs2.jpg'), '1 file');
    symlinkSync(join(dir, 'train'), join(dir, 'train-again'));
    check(join(dir, 'train-again'), '6 files');
  } finally {
    cleanup();
  }
});

test('an empty or missing data folder is an error naming the folder', () => {
  const { dir, cleanup } = tempDir('layout-empty');
  try {
    writeFile(join(dir, 'notes.txt'), 'no images here');
    assert.throws(() => scanDataset(dir), (e: unknown) => e instanceof DatasetError && e.message.includes(dir) && /no images/.test(e.message));
    assert.throws(() => scanDataset(join(dir, 'nope')), (e: unknown) => e instanceof DatasetError && e.message.includes(join(dir, 'nope')));
  } finally {
    cleanup();
  }
});

test('loader: every item exactly once per epoch, final partial batch, seeded order, correct pixels', async () => {
  const { dir, cleanup } = tempDir('loader-cover');
  try {
    makeClassFolders(dir, 9); // 27 images
    const ds = scanDataset(dir);
    const opts: ImageLoaderOptions = { items: ds.items, classes: ds.classes, imageSize: 8, mean, std, batchSize: 5, seed: 7, workers: 0 };
    const loader = new ImageLoader(opts);
    const e0 = await collect(loader, 0);
    assert.equal(e0.map((b) => b.labels.length), [5, 5, 5, 5, 5, 2]);
    assert.is(e0[5].pixels.length, 2 * 3 * 8 * 8);
    const paths0 = e0.flatMap((b) => b.paths);
    assert.equal([...paths0].sort(), ds.items.map((it) => it.path).sort());
    assert.is(loader.batchesPerEpoch, 6);
    for (const b of e0) {
      b.paths.forEach((p, k) => {
        const label = ds.items.find((it) => it.path === p)!.label;
        assert.is(b.labels[k], label);
        // Flat colour image: every pixel of channel c is (colour/255 - 0.5)/0.25 (JPEG error aside).
        for (let c = 0; c < 3; c++) {
          const v = b.pixels[(k * 3 + c) * 64 + 27];
          const want = (COLORS[label][c] / 255 - 0.5) / 0.25;
          assert.ok(Math.abs(v - want) < 0.1, `${p} channel ${c}: ${v} vs ${want}`);
        }
      });
    }
    const e1 = (await collect(loader, 1)).flatMap((b) => b.paths);
    assert.not.equal(e1, paths0, 'epochs are shuffled differently');
    const again = new ImageLoader(opts);
    assert.equal((await collect(again, 0)).flatMap((b) => b.paths), paths0, 'same seed, same order');
    const other = new ImageLoader({ ...opts, seed: 8 });
    assert.not.equal((await collect(other, 0)).flatMap((b) => b.paths), paths0);
    const inOrder = new ImageLoader({ ...opts, shuffle: false, dropLast: true });
    const ordered = await collect(inOrder, 3);
    assert.is(ordered.length, 5);
    assert.equal(ordered.flatMap((b) => b.paths), ds.items.slice(0, 25).map((it) => it.path));
    for (const l of [loader, again, other, inOrder]) await l.close();
  } finally {
    cleanup();
  }
});

test('loader: broken files are skipped with one warning and counted; batches stay full', async () => {
  const { dir, cleanup } = tempDir('loader-broken');
  try {
    makeClassFolders(dir, 4, ['cats', 'dogs']); // 8 good
    writeFile(join(dir, 'cats', 'zero.jpg'), new Uint8Array(0));
    const full = patternJpeg(40, 40);
    writeFile(join(dir, 'dogs', 'truncated.jpg'), full.subarray(0, full.length >> 1));
    writeFile(join(dir, 'dogs', 'text.jpg'), 'I am text, not a JPEG');
    writeFile(join(dir, 'cats', 'alpha.png'), encodePng({ width: 5, height: 5, colorType: 6, bitDepth: 8, samples: new Array(100).fill(200) }));
    writeFile(join(dir, 'dogs', 'deep.png'), encodePng({ width: 5, height: 3, colorType: 2, bitDepth: 16, samples: new Array(45).fill(40000) }));
    const ds = scanDataset(dir);
    assert.is(ds.items.length, 13);
    const warnings: string[] = [];
    const loader = new ImageLoader({ items: ds.items, classes: ds.classes, imageSize: 6, mean, std, batchSize: 4, workers: 0, onWarning: (m) => warnings.push(m) });
    const batches = await collect(loader, 0);
    assert.equal(batches.map((b) => b.labels.length), [4, 4, 2]);
    assert.is(warnings.length, 1);
    for (const name of ['zero.jpg', 'truncated.jpg', 'text.jpg']) assert.ok(warnings[0].includes(name), warnings[0]);
    assert.ok(warnings[0].startsWith('Skipped 3 '), warnings[0]);
    assert.is(loader.skipped.length, 3);
    assert.is(loader.size, 10);
    assert.is(loader.batchesPerEpoch, 3);
    await collect(loader, 1);
    assert.is(warnings.length, 1, 'warned once');
    assert.is(loader.stats.decoded, 13, 'known-bad files are not retried');
    await loader.close();
  } finally {
    cleanup();
  }
});

test('loader: a data set with no decodable image is an error', async () => {
  const { dir, cleanup } = tempDir('loader-allbad');
  try {
    writeFile(join(dir, 'a', 'x.jpg'), 'text');
    writeFile(join(dir, 'b', 'y.jpg'), new Uint8Array(0));
    const ds = scanDataset(dir);
    const loader = new ImageLoader({ items: ds.items, classes: ds.classes, imageSize: 4, mean, std, batchSize: 2, workers: 0, onWarning: () => {} });
    let err: Error | null = null;
    try {
      await collect(loader, 0);
    } catch (e) {
      err = e as Error;
    }
    assert.ok(err && /no decodable images/.test(err.message), String(err));
    await loader.close();
    assert.throws(() => new ImageLoader({ items: [], classes: ['a'], imageSize: 4, mean, std, batchSize: 2 }), /empty/);
  } finally {
    cleanup();
  }
});

test('loader: after skipping, a class without a usable image is an error naming it; a strong imbalance warns', async () => {
  const { dir, cleanup } = tempDir('loader-empty-class');
  try {
    const loader = (items: DataItem[], classes: string[]) =>
      new ImageLoader({ items, classes, imageSize: 4, mean, std, batchSize: 4, workers: 0, onWarning: () => {} });
    const all = join(dir, 'all-dogs-bad');
    makeClassFolders(all, 6, ['cats', 'dogs', 'owls']);
    for (let i = 0; i < 6; i++) writeFile(join(all, 'dogs', `dogs${i}.jpg`), 'not a JPEG');
    const ds = scanDataset(all);
    const train = loader(ds.items, ds.classes), val = loader(ds.items.filter((_, i) => i % 3 === 0), ds.classes);
    await train.prepare();
    await val.prepare();
    assert.equal(train.classCounts, [6, 0, 6]);
    const warnings: string[] = [];
    assert.throws(() => checkClassCounts(train, val, (m) => warnings.push(m)),
      (e: unknown) => e instanceof DatasetError && /class dogs has no usable training image/.test(e.message) && e.message.includes(join(all, 'dogs', 'dogs0.jpg')));

    // Usable but lopsided: 6 cats and 1 owl (5 owl files empty); the validation set has no owl.
    const few = join(dir, 'few-owls');
    makeClassFolders(few, 6, ['cats', 'owls']);
    for (let i = 1; i < 6; i++) writeFile(join(few, 'owls', `owls${i}.jpg`), new Uint8Array(0));
    const d2 = scanDataset(few);
    const t2 = loader(d2.items, d2.classes), v2 = loader(d2.items.filter((it) => it.label === 0), d2.classes);
    await t2.prepare();
    await v2.prepare();
    assert.equal(t2.classCounts, [6, 1]);
    checkClassCounts(t2, v2, (m) => warnings.push(m));
    assert.is(warnings.length, 2, warnings.join('\n'));
    assert.match(warnings[0], /imbalanced.*cats 6.*owls 1/);
    assert.match(warnings[1], /validation set has no usable image of owls/);
    // Balanced, every class in both: silent.
    const ok = join(dir, 'ok');
    makeClassFolders(ok, 2, ['cats', 'dogs']);
    const d3 = scanDataset(ok);
    const t3 = loader(d3.items, d3.classes);
    await t3.prepare();
    checkClassCounts(t3, t3, (m) => warnings.push(m));
    assert.is(warnings.length, 2);
    for (const l of [train, val, t2, v2, t3]) await l.close();
  } finally {
    cleanup();
  }
});

test('cache: a warm cache decodes nothing and gives identical augmented batches; workers decode the cold pass', async () => {
  const { dir, cleanup } = tempDir('loader-cache');
  try {
    const data = join(dir, 'data'), cacheDir = join(dir, 'cache');
    makeClassFolders(data, 10, ['cats', 'dogs']);
    writeFile(join(data, 'dogs', 'bad.jpg'), 'not an image');
    const ds = scanDataset(data);
    const warnings: string[] = [];
    const opts: ImageLoaderOptions = {
      items: ds.items, classes: ds.classes, imageSize: 12, mean, std, batchSize: 6, seed: 3,
      augment: { colorJitter: true }, cacheDir, workers: 2, onWarning: (m) => warnings.push(m),
    };
    const cold = new ImageLoader(opts);
    assert.is(cold.cacheSize, 24);
    const coldBatches = await collect(cold, 2);
    assert.is(cold.stats.decoded, 21);
    assert.is(cold.stats.decodedInWorkers, 21, 'decoded in worker threads');
    await cold.close();
    assert.is(warnings.length, 1);
    const files = readdirSync(cacheDir);
    assert.is(files.filter((f) => f.endsWith('.json')).length, 1, files.join());
    assert.is(files.filter((f) => f.endsWith('.bin')).length, 1, files.join());

    const warm = new ImageLoader(opts);
    const warmBatches = await collect(warm, 2);
    assert.is(warm.stats.decoded, 0, 'no decoding with a warm cache');
    assert.is(warm.stats.fromDiskCache, 21);
    assert.is(warm.skipped.length, 1, 'known failures come from the cache too');
    assert.equal(warmBatches.map((b) => b.paths), coldBatches.map((b) => b.paths));
    warmBatches.forEach((b, i) => assert.ok(b.pixels.every((v, k) => v === coldBatches[i].pixels[k]), `batch ${i} pixels differ`));
    await warm.close();

    // A changed file is decoded again; nothing else is.
    const changed = ds.items[3].path;
    writeFileSync(changed, solidJpeg(30, 30, [1, 2, 3]));
    utimesSync(changed, new Date(), new Date(Date.now() + 5000));
    const after = new ImageLoader({ ...opts, workers: 0 });
    await collect(after, 0);
    assert.is(after.stats.decoded, 1);
    await after.close();
  } finally {
    cleanup();
  }
});

test('cache: a corrupt index or data file is ignored and rebuilt, never a crash', async () => {
  const { dir, cleanup } = tempDir('loader-corrupt');
  try {
    const data = join(dir, 'data'), cacheDir = join(dir, 'cache');
    makeClassFolders(data, 3, ['x', 'y']);
    const ds = scanDataset(data);
    const warnings: string[] = [];
    const opts: ImageLoaderOptions = { items: ds.items, classes: ds.classes, imageSize: 8, mean, std, batchSize: 4, cacheDir, workers: 0, onWarning: (m) => warnings.push(m) };
    const run = async () => {
      const l = new ImageLoader(opts);
      const n = (await collect(l, 0)).reduce((s, b) => s + b.labels.length, 0);
      await l.close();
      assert.is(n, 6);
      return l.stats.decoded;
    };
    assert.is(await run(), 6);
    const index = join(cacheDir, readdirSync(cacheDir).find((f) => f.endsWith('.json'))!);
    writeFileSync(index, '{"version": 1, "size": 8, "data": "tru');
    assert.is(await run(), 6);
    assert.ok(warnings.some((w) => /unusable image cache/.test(w)), warnings.join('\n'));
    assert.is(await run(), 0, 'rebuilt cache is used');
    const bin = join(cacheDir, readdirSync(cacheDir).find((f) => f.endsWith('.bin'))!);
    const bytes = readFileSync(bin);
    writeFileSync(bin, bytes.subarray(0, bytes.length - 5));
    assert.is(await run(), 6, 'short data file ignored');
    const bin2 = join(cacheDir, readdirSync(cacheDir).find((f) => f.endsWith('.bin'))!);
    const flipped = readFileSync(bin2);
    flipped[10] ^= 0xff;
    writeFileSync(bin2, flipped);
    assert.is(await run(), 6, 'checksum mismatch ignored');
    assert.is(readdirSync(cacheDir).filter((f) => f.endsWith('.bin')).length, 1, 'old data files removed');
  } finally {
    cleanup();
  }
});

test('cache: train and val loaders over one folder share its cache file', async () => {
  const { dir, cleanup } = tempDir('loader-share');
  try {
    const data = join(dir, 'data'), cacheDir = join(dir, 'cache');
    makeClassFolders(data, 4, ['p', 'q']);
    const ds = scanDataset(data);
    const base = { classes: ds.classes, imageSize: 8, mean, std, batchSize: 4, cacheDir, cacheSize: 8, workers: 0 };
    const halves: DataItem[][] = [ds.items.filter((_, i) => i % 2 === 0), ds.items.filter((_, i) => i % 2 === 1)];
    for (const items of halves) {
      const l = new ImageLoader({ ...base, items });
      await collect(l, 0);
      await l.close();
    }
    const all = new ImageLoader({ ...base, items: ds.items });
    await collect(all, 0);
    assert.is(all.stats.decoded, 0);
    await all.close();
  } finally {
    cleanup();
  }
});

test('workers do not keep the process alive, with or without close()', () => {
  const { dir, cleanup } = tempDir('loader-exit');
  try {
    makeClassFolders(join(dir, 'data'), 6, ['a', 'b']);
    const loaderUrl = new URL('../src/data/loader.ts', import.meta.url).href;
    const layoutsUrl = new URL('../src/data/layouts.ts', import.meta.url).href;
    for (const close of [true, false]) {
      const script = join(dir, `child-${close}.mts`);
      writeFileSync(script, `
        import { ImageLoader } from ${JSON.stringify(loaderUrl)};
        import { scanDataset } from ${JSON.stringify(layoutsUrl)};
        const ds = scanDataset(${JSON.stringify(join(dir, 'data'))});
        const l = new ImageLoader({ items: ds.items, classes: ds.classes, imageSize: 8, mean: [0, 0, 0], std: [1, 1, 1], batchSize: 5, workers: 2 });
        let n = 0;
        for await (const b of l.batches(0)) n += b.labels.length;
        ${close ? 'await l.close();' : ''}
        console.log('seen', n, 'workers', l.stats.decodedInWorkers);
      `);
      const root = fileURLToPath(new URL('..', import.meta.url));
      const res = spawnSync(process.execPath, ['--import', 'tsx', script], { cwd: root, timeout: 30000, encoding: 'utf8' });
      assert.is(res.signal, null, `child hung (close=${close}): ${res.stderr}`);
      assert.is(res.status, 0, res.stderr);
      assert.match(res.stdout, /seen 12 workers 12/);
    }
  } finally {
    cleanup();
  }
});

test('prepare() decodes everything up front and reports exact counts', async () => {
  const { dir, cleanup } = tempDir('loader-prepare');
  try {
    makeClassFolders(dir, 3, ['a', 'b']);
    writeFile(join(dir, 'a', 'broken.jpg'), new Uint8Array(0));
    const ds = scanDataset(dir);
    const warnings: string[] = [];
    const loader = new ImageLoader({ items: ds.items, classes: ds.classes, imageSize: 4, mean, std, batchSize: 4, workers: 0, onWarning: (m) => warnings.push(m) });
    let last = 0;
    const res = await loader.prepare((done, total) => (last = done / total));
    assert.is(last, 1);
    assert.is(res.images, 6);
    assert.is(res.skipped.length, 1);
    assert.is(warnings.length, 1);
    assert.is(loader.batchesPerEpoch, 2);
    await collect(loader, 0);
    assert.is(loader.stats.decoded, 7);
    assert.is(warnings.length, 1);
    await loader.close();
  } finally {
    cleanup();
  }
});

test.run();
