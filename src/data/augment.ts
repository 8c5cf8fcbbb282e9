// From a cached RGB image to one normalised float32 CHW sample: optional random resized crop,
// resize to image_size, optional horizontal flip and colour jitter, then (x/255 - mean) / std.
import type { RgbImage } from './decode.ts';
import { resizeRgbToFloat, type Rect } from './resize.ts';
import { randInt, uniform } from './random.ts';

export interface ColorJitterOptions {
  /** Factor drawn from [max(0, 1-b), 1+b]; 0 disables. Like torchvision.transforms.ColorJitter. */
  brightness?: number;
  contrast?: number;
  saturation?: number;
}

export interface AugmentOptions {
  /** Random resized crop (torchvision RandomResizedCrop). Default true. */
  crop?: boolean;
  /** Crop area as a fraction of the image. Default [0.08, 1]. */
  scale?: [number, number];
  /** Crop aspect ratio range (width/height). Default [3/4, 4/3]. */
  ratio?: [number, number];
  /** Horizontal flip with probability 0.5. Default true. */
  hflip?: boolean;
  /** Colour jitter; off by default. `true` means 0.2 for brightness, contrast and saturation. */
  colorJitter?: boolean | ColorJitterOptions;
}

export interface ResolvedAugment {
  crop: boolean;
  scale: [number, number];
  ratio: [number, number];
  hflip: boolean;
  jitter: { brightness: number; contrast: number; saturation: number } | null;
}

/** `true` = crop (0.08..1) + flip, no jitter; `false`/undefined = no augmentation (null). */
export function resolveAugment(a: boolean | AugmentOptions | undefined): ResolvedAugment | null {
  if (!a) return null;
  const o: AugmentOptions = a === true ? {} : a;
  const cj = o.colorJitter === true ? { brightness: 0.2, contrast: 0.2, saturation: 0.2 } : o.colorJitter || null;
  const jitter = cj ? { brightness: cj.brightness ?? 0, contrast: cj.contrast ?? 0, saturation: cj.saturation ?? 0 } : null;
  const res: ResolvedAugment = {
    crop: o.crop ?? true,
    scale: o.scale ?? [0.08, 1],
    ratio: o.ratio ?? [3 / 4, 4 / 3],
    hflip: o.hflip ?? true,
    jitter: jitter && (jitter.brightness || jitter.contrast || jitter.saturation) ? jitter : null,
  };
  const [s0, s1] = res.scale, [r0, r1] = res.ratio;
  if (!(s0 > 0 && s0 <= s1 && s1 <= 1)) throw new RangeError(`augment scale must satisfy 0 < lo <= hi <= 1, got [${s0}, ${s1}]`);
  if (!(r0 > 0 && r0 <= r1)) throw new RangeError(`augment ratio must satisfy 0 < lo <= hi, got [${r0}, ${r1}]`);
  return res;
}

/** The centred integer rectangle keeping `fraction` of each side (evaluation's centre crop). */
export function centerCropRect(width: number, height: number, fraction: number): Rect {
  if (!(fraction > 0 && fraction <= 1)) throw new RangeError(`centre crop fraction must be in (0, 1], got ${fraction}`);
  const w = Math.max(1, Math.round(width * fraction)), h = Math.max(1, Math.round(height * fraction));
  return { x: Math.floor((width - w) / 2), y: Math.floor((height - h) / 2), width: w, height: h };
}

/** torchvision RandomResizedCrop.get_params: 10 tries, then a centre crop clamped to the ratio range. */
export function randomResizedCropRect(width: number, height: number, scale: [number, number], ratio: [number, number], r: () => number): Rect {
  const area = width * height;
  const logR0 = Math.log(ratio[0]), logR1 = Math.log(ratio[1]);
  for (let attempt = 0; attempt < 10; attempt++) {
    const targetArea = area * uniform(r, scale[0], scale[1]);
    const aspect = Math.exp(uniform(r, logR0, logR1));
    const w = Math.round(Math.sqrt(targetArea * aspect));
    const h = Math.round(Math.sqrt(targetArea / aspect));
    if (w > 0 && h > 0 && w <= width && h <= height) {
      return { y: randInt(r, 0, height - h), x: randInt(r, 0, width - w), width: w, height: h };
    }
  }
  const inRatio = width / height;
  let w = width, h = height;
  if (inRatio < ratio[0]) h = Math.round(w / ratio[0]);
  else if (inRatio > ratio[1]) w = Math.round(h * ratio[1]);
  return { x: Math.floor((width - w) / 2), y: Math.floor((height - h) / 2), width: w, height: h };
}

const GREY = [0.299, 0.587, 0.114];

/** torchvision-style colour jitter on HWC floats in 0..255, in a random order of the three ops. */
function colorJitterInPlace(px: Float32Array, j: NonNullable<ResolvedAugment['jitter']>, r: () => number): void {
  const draw = (s: number) => (s > 0 ? uniform(r, Math.max(0, 1 - s), 1 + s) : 1);
  const ops = [0, 1, 2];
  for (let i = 2; i > 0; i--) {
    const k = Math.floor(r() * (i + 1));
    [ops[i], ops[k]] = [ops[k], ops[i]];
  }
  const factors = [draw(j.brightness), draw(j.contrast), draw(j.saturation)];
  const clamp = (v: number) => (v < 0 ? 0 : v > 255 ? 255 : v);
  const n = px.length / 3;
  for (const op of ops) {
    const f = factors[op];
    if (f === 1) continue;
    if (op === 0) {
      for (let i = 0; i < px.length; i++) px[i] = clamp(px[i] * f);
    } else if (op === 1) {
      let mean = 0;
      for (let i = 0; i < n; i++) mean += GREY[0] * px[3 * i] + GREY[1] * px[3 * i + 1] + GREY[2] * px[3 * i + 2];
      mean /= n;
      for (let i = 0; i < px.length; i++) px[i] = clamp(f * px[i] + (1 - f) * mean);
    } else {
      for (let i = 0; i < n; i++) {
        const g = GREY[0] * px[3 * i] + GREY[1] * px[3 * i + 1] + GREY[2] * px[3 * i + 2];
        for (let c = 0; c < 3; c++) px[3 * i + c] = clamp(f * px[3 * i + c] + (1 - f) * g);
      }
    }
  }
}

/**
 * Write one sample into `out` at `offset` as CHW float32 normalised with (x/255 - mean[c]) / std[c].
 * With `aug` (and its per-sample generator `r`), crop, flip and jitter first; without, the whole
 * image is resized to size x size.
 */
export function sampleToTensor(
  src: RgbImage, size: number, mean: ArrayLike<number>, std: ArrayLike<number>,
  out: Float32Array, offset: number, aug: ResolvedAugment | null = null, r: (() => number) | null = null,
  scratch?: Float32Array, centerCrop = 1,
): void {
  const px = scratch && scratch.length >= size * size * 3 ? scratch : new Float32Array(size * size * 3);
  let rect = aug?.crop ? { x: 0, y: 0, width: src.width, height: src.height } : centerCropRect(src.width, src.height, centerCrop);
  let flip = false;
  if (aug) {
    if (!r) throw new Error('sampleToTensor: augmentation needs a random generator');
    if (aug.crop) rect = randomResizedCropRect(src.width, src.height, aug.scale, aug.ratio, r);
    if (aug.hflip) flip = r() < 0.5;
  }
  resizeRgbToFloat(src, size, size, rect, px);
  if (aug?.jitter) colorJitterInPlace(px.subarray(0, size * size * 3), aug.jitter, r!);
  writeNormalized(px, size, size, mean, std, out, offset, flip);
}

/** HWC floats in 0..255 to normalised CHW at out[offset..]; optionally mirrored left-right. */
function writeNormalized(
  px: ArrayLike<number>, width: number, height: number, mean: ArrayLike<number>, std: ArrayLike<number>,
  out: Float32Array, offset: number, flip: boolean,
): void {
  const planeSize = width * height;
  for (let c = 0; c < 3; c++) {
    // (v/255 - m)/s = v*a + b
    const a = 1 / (255 * std[c]), b = -mean[c] / std[c];
    const base = offset + c * planeSize;
    for (let y = 0; y < height; y++) {
      const row = y * width;
      for (let x = 0; x < width; x++) {
        const sx = flip ? width - 1 - x : x;
        out[base + row + x] = px[(row + sx) * 3 + c] * a + b;
      }
    }
  }
}

/** Normalise a packed RGB uint8 image to float32 CHW: (pixel/255 - mean) / std per channel. */
export function normalizeToChw(img: RgbImage, mean: ArrayLike<number>, std: ArrayLike<number>): Float32Array {
  const out = new Float32Array(img.width * img.height * 3);
  writeNormalized(img.data, img.width, img.height, mean, std, out, 0, false);
  return out;
}

/** The side images are cached at: room for crops when augmenting or centre-cropping, else the model's input size. */
export function defaultCacheSize(imageSize: number, augment: boolean): number {
  return augment ? Math.min(2 * imageSize, Math.max(imageSize, 256)) : imageSize;
}
