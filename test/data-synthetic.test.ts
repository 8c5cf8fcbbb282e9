// The built-in synthetic cats-vs-dogs set: real JPEGs in a folder-per-class layout, seeded,
// idempotent, readable by the loader.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateSyntheticCatsDogs, drawSyntheticFace } from '../src/data/synthetic.ts';
import { scanDataset } from '../src/data/layouts.ts';
import { decodeFile } from '../src/data/decode.ts';
import { ImageLoader } from '../src/data/loader.ts';
import { rng } from '../src/data/random.ts';
import { tempDir } from './data-fixtures.ts';

test('synthetic set: JPEG files in cat/ and dog/, decodable, seeded and idempotent', async () => {
  const { dir, cleanup } = tempDir('synthetic');
  try {
    const res = await generateSyntheticCatsDogs(dir, { perClass: 6, size: 40, seed: 5 });
    assert.equal(res, { dir, classes: ['cat', 'dog'], count: 12 });
    const ds = scanDataset(dir);
    assert.is(ds.layout, 'class-folders');
    assert.equal(ds.classes, ['cat', 'dog']);
    assert.is(ds.items.length, 12);
    const first = ds.items[0].path;
    const bytes = readFileSync(first);
    assert.equal([bytes[0], bytes[1]], [0xff, 0xd8]);
    for (const it of ds.items) {
      const img = decodeFile(it.path);
      assert.is(img.width, 40);
      assert.is(img.height, 40);
    }
    const mtime = statSync(first).mtimeMs;
    writeFileSync(join(dir, 'cat', 'mine.jpg'), 'a file the generator must not touch');
    await generateSyntheticCatsDogs(dir, { perClass: 6, size: 40, seed: 5 });
    assert.is(statSync(first).mtimeMs, mtime, 'same parameters: nothing redrawn');

    await generateSyntheticCatsDogs(dir, { perClass: 4, size: 40, seed: 6 });
    assert.not.equal(readFileSync(first), bytes, 'new seed: redrawn');
    assert.is(scanDataset(dir).items.length, 4 + 4 + 1, 'old files removed, foreign file kept');
    await generateSyntheticCatsDogs(dir, { perClass: 6, size: 40, seed: 5 });
    assert.equal(readFileSync(first), bytes, 'deterministic for a seed');

    const loader = new ImageLoader({ items: ds.items, classes: ds.classes, imageSize: 32, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5], batchSize: 12, workers: 0 });
    let n = 0;
    for await (const b of loader.batches(0)) n += b.labels.length;
    assert.is(n, 12);
    await loader.close();
  } finally {
    cleanup();
  }
});

test('synthetic faces vary (position, colours, background) and differ between classes', () => {
  const a = drawSyntheticFace('cat', 32, rng(1)), b = drawSyntheticFace('cat', 32, rng(2)), c = drawSyntheticFace('dog', 32, rng(1));
  const dist = (x: Uint8Array, y: Uint8Array) => x.reduce((s, v, i) => s + Math.abs(v - y[i]), 0) / x.length;
  assert.ok(dist(a.data, b.data) > 10, 'two cats differ');
  assert.ok(dist(a.data, c.data) > 2, 'cat and dog from the same random stream differ');
  assert.equal(drawSyntheticFace('dog', 32, rng(1)).data, c.data);
});

test.run();
