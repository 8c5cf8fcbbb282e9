// Decoding (JPEG, every PNG flavour, broken files, size limits), resizing, normalisation,
// augmentation and the stratified split.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeImage, decodeFile, DecodeError } from '../src/data/decode.ts';
import { resizeRgb } from '../src/data/resize.ts';
import { centerCropRect, normalizeToChw, randomResizedCropRect, resolveAugment, sampleToTensor } from '../src/data/augment.ts';
import { stratifiedSplit } from '../src/data/split.ts';
import { rng } from '../src/data/random.ts';
import { encodePng, patternJpeg, solidJpeg, withJpegDimensions } from './data-fixtures.ts';
import { SHARED } from './helpers.ts';

function expectDecodeError(bytes: Uint8Array, match: RegExp, path = 'x.jpg'): DecodeError {
  try {
    decodeImage(bytes, path);
  } catch (e) {
    assert.instance(e, DecodeError);
    const err = e as DecodeError;
    assert.is(err.path, path);
    assert.match(err.reason, match);
    assert.ok(err.message.includes(path), 'message names the path');
    return err;
  }
  throw new Error(`expected a DecodeError matching ${match}`);
}

test('JPEG decodes to packed RGB with the right size and colour', () => {
  const img = decodeImage(solidJpeg(20, 12, [200, 40, 90]));
  assert.is(img.width, 20);
  assert.is(img.height, 12);
  assert.is(img.data.length, 20 * 12 * 3);
  const px = [...img.data.subarray(3 * 50, 3 * 51)];
  px.forEach((v, c) => assert.ok(Math.abs(v - [200, 40, 90][c]) <= 4, `channel ${c}: ${v}`));
});

test('broken files give a DecodeError with the path, never a crash', () => {
  expectDecodeError(new Uint8Array(0), /empty/);
  const text = new TextEncoder().encode('this is not a picture, just text named .jpg\n');
  expectDecodeError(text, /not a JPEG or PNG/);
  const full = patternJpeg(64, 48);
  for (const frac of [0.1, 0.5, 0.9]) expectDecodeError(full.subarray(0, Math.floor(full.length * frac)), /jpeg/);
  const png = encodePng({ width: 4, height: 4, colorType: 2, bitDepth: 8, samples: new Array(48).fill(7) });
  expectDecodeError(png.subarray(0, png.length - 20), /png/, 'y.png');
  const badCrc = Uint8Array.from(png);
  badCrc[30] ^= 0xff;
  expectDecodeError(badCrc, /png/, 'y.png');
});

test('a truncated PNG or JPEG says it is truncated; a damaged complete one says corrupt', () => {
  const samples = Array.from({ length: 32 * 32 * 3 }, (_, i) => (i * 37) & 255);
  const png = encodePng({ width: 32, height: 32, colorType: 2, bitDepth: 8, samples });
  for (const cut of [10, 30, 40, png.length >> 1, png.length - 12, png.length - 1]) {
    const err = expectDecodeError(png.subarray(0, cut), /^png: truncated/, 'cut.png');
    assert.not.match(err.reason, /read requests/, `cut at ${cut}: ${err.reason}`);
  }
  const badCrc = Uint8Array.from(png);
  badCrc[30] ^= 0xff;
  expectDecodeError(badCrc, /^png: corrupt/, 'crc.png');
  const jpg = patternJpeg(64, 48);
  for (const cut of [3, 100, jpg.length >> 1, jpg.length - 2, jpg.length - 1]) expectDecodeError(jpg.subarray(0, cut), /^jpeg: truncated/, 'cut.jpg');
  const garbled = Uint8Array.from(jpg);
  garbled.fill(0, 4, 40); // header segments zeroed; the end-of-image marker is still there
  expectDecodeError(garbled, /^jpeg: corrupt/, 'garbled.jpg');
});

test('a header claiming huge dimensions is rejected by the limits without allocating', () => {
  const before = process.memoryUsage().rss;
  expectDecodeError(withJpegDimensions(solidJpeg(16, 16, [1, 2, 3]), 60000, 60000), /limit/);
  const png = encodePng({ width: 2, height: 2, colorType: 2, bitDepth: 8, samples: new Array(12).fill(0) });
  const huge = Uint8Array.from(png);
  new DataView(huge.buffer).setUint32(16, 50000);
  new DataView(huge.buffer).setUint32(20, 50000);
  expectDecodeError(huge, /megapixel limit/, 'huge.png');
  // A just-too-large image under a tight custom limit.
  assert.throws(() => decodeImage(solidJpeg(64, 64, [0, 0, 0]), 'a.jpg', { maxMegapixels: 0.001 }), (e: unknown) => e instanceof DecodeError);
  assert.ok(process.memoryUsage().rss - before < 200e6, 'no large allocation');
});

test('PNG: grey, grey+alpha, palette (+tRNS), 16-bit and RGBA; alpha composited over black', () => {
  const grey = decodeImage(encodePng({ width: 3, height: 1, colorType: 0, bitDepth: 8, samples: [0, 128, 255] }), 'g.png');
  assert.equal([...grey.data], [0, 0, 0, 128, 128, 128, 255, 255, 255]);

  const grey4 = decodeImage(encodePng({ width: 2, height: 1, colorType: 0, bitDepth: 4, samples: [15, 5] }), 'g4.png');
  assert.equal([...grey4.data], [255, 255, 255, 85, 85, 85]);

  const greyAlpha = decodeImage(encodePng({ width: 2, height: 1, colorType: 4, bitDepth: 8, samples: [200, 255, 200, 0] }), 'ga.png');
  assert.equal([...greyAlpha.data], [200, 200, 200, 0, 0, 0]);

  const palette = decodeImage(encodePng({
    width: 3, height: 1, colorType: 3, bitDepth: 8, samples: [2, 0, 1],
    palette: [[255, 0, 0], [0, 255, 0], [10, 20, 30]], paletteAlpha: [255, 0],
  }), 'p.png');
  assert.equal([...palette.data], [10, 20, 30, 255, 0, 0, 0, 0, 0]);

  const deep = decodeImage(encodePng({ width: 2, height: 1, colorType: 2, bitDepth: 16, samples: [65535, 0, 32896, 257, 514, 65535] }), 'd.png');
  assert.equal([...deep.data], [255, 0, 128, 1, 2, 255]);

  const rgba = decodeImage(encodePng({ width: 2, height: 1, colorType: 6, bitDepth: 8, samples: [100, 200, 50, 255, 100, 200, 50, 128] }), 'a.png');
  assert.equal([...rgba.data], [100, 200, 50, 50, 100, 25]);

  const rgba16 = decodeImage(encodePng({ width: 1, height: 1, colorType: 6, bitDepth: 16, samples: [65535, 65535, 0, 0] }), 'a16.png');
  assert.equal([...rgba16.data], [0, 0, 0]);
});

test('a PNG named .jpg decodes by its magic bytes', () => {
  const img = decodeImage(encodePng({ width: 1, height: 1, colorType: 2, bitDepth: 8, samples: [1, 2, 3] }), 'looks-like.jpg');
  assert.equal([...img.data], [1, 2, 3]);
});

test('real photos from the Kaggle set decode at their manifest size', () => {
  const root = join(SHARED, 'data/catsdogs');
  const manifest = readFileSync(join(root, 'MANIFEST.csv'), 'utf8').split('\n').slice(1).filter((l) => l.startsWith('train/cats/'));
  // Without this, a manifest whose lines no longer match would let the test pass having checked nothing.
  assert.ok(manifest.length >= 4, `MANIFEST.csv lists ${manifest.length} train/cats/ photos; expected at least 4`);
  for (const line of manifest.slice(0, 4)) {
    const [file, , , , , width, height] = line.split(',');
    const img = decodeFile(join(root, file));
    assert.is(img.width, Number(width), file);
    assert.is(img.height, Number(height), file);
    let sum = 0;
    for (const v of img.data) sum += v;
    const mean = sum / img.data.length;
    assert.ok(mean > 5 && mean < 250, `${file} mean ${mean}`);
  }
});

test('resize: 1-px checkerboard shrunk 4x is uniform grey; constants stay constant', () => {
  const n = 64;
  const data = new Uint8Array(n * n * 3);
  for (let y = 0; y < n; y++) for (let x = 0; x < n; x++) data.fill((x + y) % 2 ? 255 : 0, 3 * (y * n + x), 3 * (y * n + x) + 3);
  const small = resizeRgb({ width: n, height: n, data }, 16, 16);
  for (const v of small) assert.is(v, 128);
  // Non-integer factors, both directions, non-square.
  const flat = { width: 37, height: 23, data: new Uint8Array(37 * 23 * 3).fill(77) };
  for (const [w, h] of [[10, 7], [32, 32], [50, 41], [3, 90]]) {
    for (const v of resizeRgb(flat, w, h)) assert.is(v, 77, `${w}x${h}`);
  }
  const oddBoard = resizeRgb({ width: n, height: n, data }, 20, 20);
  for (const v of oddBoard) assert.ok(Math.abs(v - 127.5) < 16, `non-integer shrink aliasing: ${v}`);
});

test('resize: area weights when shrinking, bilinear (half-pixel centres) when enlarging', () => {
  const row = (vals: number[]) => ({ width: vals.length, height: 1, data: Uint8Array.from(vals.flatMap((v) => [v, v, v])) });
  const pick = (a: Uint8Array) => [...a].filter((_, i) => i % 3 === 0);
  assert.equal(pick(resizeRgb(row([0, 90, 180]), 2, 1)), [30, 150]);
  assert.equal(pick(resizeRgb(row([0, 255]), 4, 1)), [0, 64, 191, 255]);
  assert.equal(pick(resizeRgb(row([10, 20, 30, 40]), 2, 1)), [15, 35]);
  // A crop rectangle selects the region.
  assert.equal(pick(resizeRgb(row([10, 20, 30, 40]), 2, 1, { x: 2, y: 0, width: 2, height: 1 })), [30, 40]);
});

test('normalisation: (pixel/255 - mean)/std, CHW order', () => {
  const img = { width: 2, height: 1, data: Uint8Array.from([255, 0, 51, 0, 255, 102]) };
  const mean = [0.5, 0.4, 0.3], std = [0.5, 0.2, 0.1];
  const out = normalizeToChw(img, mean, std);
  const want = [(1 - 0.5) / 0.5, (0 - 0.5) / 0.5, (0 - 0.4) / 0.2, (1 - 0.4) / 0.2, (0.2 - 0.3) / 0.1, (0.4 - 0.3) / 0.1];
  want.forEach((w, i) => assert.ok(Math.abs(out[i] - w) < 1e-6, `${i}: ${out[i]} vs ${w}`));
  // sampleToTensor without augmentation = resize + the same normalisation.
  const big = new Float32Array(10 + 6);
  sampleToTensor(img, 1, mean, std, big, 10);
  assert.ok(Math.abs(big[10] - ((127.5 / 255 - 0.5) / 0.5)) < 1e-6);
});

test('random resized crop follows torchvision: inside the image, area and ratio in range', () => {
  const r = rng(3);
  for (let k = 0; k < 500; k++) {
    const rect = randomResizedCropRect(64, 48, [0.08, 1], [3 / 4, 4 / 3], r);
    assert.ok(rect.x >= 0 && rect.y >= 0 && rect.x + rect.width <= 64 && rect.y + rect.height <= 48, JSON.stringify(rect));
    const area = (rect.width * rect.height) / (64 * 48);
    assert.ok(area > 0.05 && area <= 1.0001, `area ${area}`);
  }
  assert.equal(randomResizedCropRect(40, 40, [1, 1], [1, 1], r), { x: 0, y: 0, width: 40, height: 40 });
  // Impossible ratio: falls back to a centre crop clamped to the ratio range.
  assert.equal(randomResizedCropRect(100, 10, [1, 1], [1, 2], r), { x: 40, y: 0, width: 20, height: 10 });
});

test('centre crop for evaluation: centred integer rectangle; only the centre reaches the tensor', () => {
  assert.equal(centerCropRect(64, 64, 1), { x: 0, y: 0, width: 64, height: 64 });
  assert.equal(centerCropRect(64, 64, 0.5), { x: 16, y: 16, width: 32, height: 32 });
  assert.equal(centerCropRect(100, 50, 0.8), { x: 10, y: 5, width: 80, height: 40 });
  assert.equal(centerCropRect(3, 3, 0.01), { x: 1, y: 1, width: 1, height: 1 });
  assert.throws(() => centerCropRect(8, 8, 0), /\(0, 1\]/);
  // an 8x8 image: a 4x4 white centre in a black frame; the half-side crop sees only white
  const data = new Uint8Array(8 * 8 * 3);
  for (let y = 2; y < 6; y++) for (let x = 2; x < 6; x++) data.fill(255, (y * 8 + x) * 3, (y * 8 + x) * 3 + 3);
  const img = { width: 8, height: 8, data };
  const out = new Float32Array(3 * 2 * 2);
  sampleToTensor(img, 2, [0, 0, 0], [1, 1, 1], out, 0, null, null, undefined, 0.5);
  assert.equal(Array.from(out), new Array(12).fill(1));
  sampleToTensor(img, 2, [0, 0, 0], [1, 1, 1], out, 0);
  assert.equal(Array.from(out), new Array(12).fill(0.25)); // the whole image: a quarter of each 4x4 block is white
  // with a random resized crop the centre crop is not applied on top
  const aug = resolveAugment({ crop: true, scale: [1, 1], ratio: [1, 1], hflip: false })!;
  sampleToTensor(img, 2, [0, 0, 0], [1, 1, 1], out, 0, aug, rng(1), undefined, 0.5);
  assert.equal(Array.from(out), new Array(12).fill(0.25));
});

test('flip and colour jitter are seeded; flip mirrors the image', () => {
  const w = 4, img = { width: w, height: w, data: new Uint8Array(w * w * 3) };
  for (let i = 0; i < w * w; i++) img.data.fill((i % w) * 60, 3 * i, 3 * i + 3);
  const plain = new Float32Array(3 * w * w);
  sampleToTensor(img, w, [0, 0, 0], [1, 1, 1], plain, 0);
  const flipOnly = resolveAugment({ crop: false, hflip: true });
  let flipped = 0;
  for (let s = 0; s < 20; s++) {
    const out = new Float32Array(3 * w * w);
    sampleToTensor(img, w, [0, 0, 0], [1, 1, 1], out, 0, flipOnly, rng(s));
    const same = out.every((v, i) => v === plain[i]);
    const mirrored = out.every((v, i) => v === plain[Math.floor(i / w) * w + (w - 1 - (i % w))]);
    assert.ok(same || mirrored);
    if (mirrored && !same) flipped++;
  }
  assert.ok(flipped > 3 && flipped < 17, `flipped ${flipped}/20`);
  const jitter = resolveAugment({ colorJitter: true });
  const a = new Float32Array(3 * w * w), b = new Float32Array(3 * w * w);
  sampleToTensor(img, w, [0, 0, 0], [1, 1, 1], a, 0, jitter, rng(9));
  sampleToTensor(img, w, [0, 0, 0], [1, 1, 1], b, 0, jitter, rng(9));
  assert.equal([...a], [...b]);
  for (const v of a) assert.ok(v >= 0 && v <= 1, 'jitter clamps to [0, 1]');
  assert.throws(() => resolveAugment({ scale: [0.5, 0.2] }), /scale/);
});

test('stratified split: per-class fractions, disjoint, covering, seeded', () => {
  const items = [
    ...Array.from({ length: 50 }, (_, i) => ({ path: `a${i}`, label: 0 })),
    ...Array.from({ length: 30 }, (_, i) => ({ path: `b${i}`, label: 1 })),
    ...Array.from({ length: 7 }, (_, i) => ({ path: `c${i}`, label: 2 })),
    { path: 'd0', label: 3 },
  ];
  const { train, val } = stratifiedSplit(items, 0.2, 1);
  const count = (xs: typeof items, l: number) => xs.filter((x) => x.label === l).length;
  assert.equal([0, 1, 2, 3].map((l) => count(val, l)), [10, 6, 1, 0]);
  assert.is(train.length + val.length, items.length);
  assert.is(new Set([...train, ...val].map((x) => x.path)).size, items.length);
  assert.equal(stratifiedSplit(items, 0.2, 1).val, val);
  assert.not.equal(stratifiedSplit(items, 0.2, 2).val.map((x) => x.path), val.map((x) => x.path));
  assert.is(stratifiedSplit(items, 0, 1).val.length, 0);
  assert.throws(() => stratifiedSplit(items, 1), /val_split/);
  // The same path twice could land in both halves.
  assert.throws(() => stratifiedSplit([...items, { path: 'b3', label: 1 }], 0.2), /b3.*twice/);
});

test.run();
