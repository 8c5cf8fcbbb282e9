// The built-in data set: procedurally drawn cartoon cat and dog faces, written as real JPEG files
// in a folder-per-class layout (cat/, dog/) so they go through the same loader as photos.
//
// Class cues (kept strong so a small ViT at 32 px learns them fast):
//   cat: pointed triangular ears on top of the head, almond eyes with slit pupils, a small pink
//        nose and whiskers;
//   dog: long rounded ears hanging down the sides of the head, a longer light muzzle below it,
//        a big dark nose, round dark eyes, often a pink tongue.
// Nuisance factors, drawn the same way for both classes: position, size, rotation (+-20 deg), fur
// colours from one shared palette, background gradient, background blobs, pixel noise and JPEG
// quality. Faces are rasterised at 3x and area-downsampled, so edges are antialiased.
// The drawing itself is in synthetic-draw.ts (platform-neutral).
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync, renameSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import jpeg from 'jpeg-js';
import { SYNTHETIC_CLASSES, syntheticSample } from './synthetic-draw.ts';

export { drawSyntheticFace, syntheticSample } from './synthetic-draw.ts';

/** Bump when the drawing changes, so generated folders are redrawn. */
const GENERATOR_VERSION = 1;
const MARKER = '.synthetic.json';

type JpegEncode = (img: { data: Uint8Array; width: number; height: number }, quality: number) => Uint8Array;

/**
 * jpeg-js' encode() builds a new encoder per call, and building its tables costs ~25 ms, far more
 * than encoding a 64x64 image. Its JPEGEncoder class is not exported, so load it from the library
 * file once and reuse one instance (quality is set per call); fall back to encode() if that fails.
 */
function reusableJpegEncoder(): JpegEncode {
  try {
    const require = createRequire(import.meta.url);
    const src = readFileSync(require.resolve('jpeg-js/lib/encoder.js'), 'utf8');
    const JPEGEncoder = new Function('module', 'require', `${src}\nreturn JPEGEncoder;`)({}, require);
    const encoder = new JPEGEncoder(90);
    return (img, quality) => encoder.encode(img, quality);
  } catch {
    return (img, quality) => jpeg.encode(img, quality).data;
  }
}

export interface SyntheticOptions {
  /** Images per class. Default 1000. */
  perClass?: number;
  /** Image side in pixels. Default 64. */
  size?: number;
  seed?: number;
}

const CLASSES = SYNTHETIC_CLASSES;
const FILE_NAME = /^(cat|dog)\.\d+\.jpg$/;

/**
 * Write the synthetic set to dir/cat/cat.00000.jpg ... and dir/dog/dog.00000.jpg ... .
 * Idempotent: when dir/.synthetic.json records the same parameters, nothing is redrawn. Only
 * files this generator names are ever removed.
 */
export async function generateSyntheticCatsDogs(
  dir: string, opts: SyntheticOptions = {},
): Promise<{ dir: string; classes: string[]; count: number }> {
  const root = resolve(dir);
  const params = { generator: GENERATOR_VERSION, perClass: opts.perClass ?? 1000, size: opts.size ?? 64, seed: opts.seed ?? 0 };
  if (!(Number.isInteger(params.perClass) && params.perClass > 0)) throw new RangeError(`perClass must be a positive integer, got ${params.perClass}`);
  if (!(Number.isInteger(params.size) && params.size >= 8)) throw new RangeError(`size must be an integer >= 8, got ${params.size}`);
  const result = { dir: root, classes: [...CLASSES], count: 2 * params.perClass };
  const markerPath = join(root, MARKER);
  try {
    if (JSON.stringify(JSON.parse(readFileSync(markerPath, 'utf8'))) === JSON.stringify(params)) return result;
  } catch {
    // no marker or unreadable: (re)generate
  }
  rmSync(markerPath, { force: true });
  const encode = reusableJpegEncoder();
  for (const [label, name] of CLASSES.entries()) {
    const sub = join(root, name);
    mkdirSync(sub, { recursive: true });
    for (const f of readdirSync(sub)) if (FILE_NAME.test(f)) rmSync(join(sub, f));
    for (let i = 0; i < params.perClass; i++) {
      const { image: img, quality } = syntheticSample(params.seed, label, i, params.size);
      const rgba = new Uint8Array(params.size * params.size * 4);
      for (let p = 0; p < params.size * params.size; p++) {
        rgba[4 * p] = img.data[3 * p];
        rgba[4 * p + 1] = img.data[3 * p + 1];
        rgba[4 * p + 2] = img.data[3 * p + 2];
        rgba[4 * p + 3] = 255;
      }
      const file = join(sub, `${name}.${String(i).padStart(5, '0')}.jpg`);
      writeFileSync(file, encode({ data: rgba, width: params.size, height: params.size }, quality));
      if (i % 64 === 63) await new Promise((res) => setImmediate(res)); // stay responsive
    }
  }
  // Marker last (atomically), so an interrupted run is redone.
  writeFileSync(`${markerPath}.tmp`, JSON.stringify(params));
  renameSync(`${markerPath}.tmp`, markerPath);
  if (!existsSync(markerPath)) throw new Error(`could not write ${markerPath}`);
  return result;
}
