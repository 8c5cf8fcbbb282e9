// Separable resampling of packed RGB uint8 images (HWC).
// Shrinking uses an area (box) filter: each output pixel averages the source area it covers, with
// fractional weights at its edges, so the filter's support grows with the factor and fine detail
// (a one-pixel checkerboard) averages out instead of aliasing. Enlarging uses bilinear
// interpolation with pixel centres aligned (align_corners=False). Each axis picks independently.
import type { RgbImage } from './decode.ts';

/** Integer source rectangle (the whole image when omitted). */
export interface Rect {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** Per output index: first source index and its weights (summing to 1). */
interface AxisWeights {
  start: Int32Array;
  count: Int32Array;
  weights: Float32Array; // count[i] entries per output i, at offset[i]
  offset: Int32Array;
}

const weightCache = new Map<string, AxisWeights>();

/** Weights mapping a source span [0, inSize) onto outSize pixels. */
function axisWeights(inSize: number, outSize: number): AxisWeights {
  const key = `${inSize}:${outSize}`;
  const hit = weightCache.get(key);
  if (hit) return hit;
  const start = new Int32Array(outSize), count = new Int32Array(outSize), offset = new Int32Array(outSize);
  const ws: number[] = [];
  const scale = inSize / outSize;
  for (let i = 0; i < outSize; i++) {
    offset[i] = ws.length;
    if (scale > 1) {
      // Area: output pixel i covers source interval [i*scale, (i+1)*scale).
      const lo = i * scale, hi = (i + 1) * scale;
      const j0 = Math.floor(lo), j1 = Math.min(inSize, Math.ceil(hi));
      start[i] = j0;
      for (let j = j0; j < j1; j++) ws.push((Math.min(hi, j + 1) - Math.max(lo, j)) / scale);
    } else {
      // Bilinear between the two nearest source centres, clamped at the borders.
      const src = Math.min(Math.max((i + 0.5) * scale - 0.5, 0), inSize - 1);
      const j0 = Math.floor(src), t = src - j0;
      start[i] = j0;
      if (t > 0 && j0 + 1 < inSize) ws.push(1 - t, t);
      else ws.push(1);
    }
    count[i] = ws.length - offset[i];
  }
  const w: AxisWeights = { start, count, offset, weights: Float32Array.from(ws) };
  if (weightCache.size > 256) weightCache.clear();
  weightCache.set(key, w);
  return w;
}

/**
 * Resize the `rect` region of `src` (default: all of it) to outWidth x outHeight. Returns packed
 * RGB uint8, rounded to nearest.
 */
export function resizeRgb(src: RgbImage, outWidth: number, outHeight: number, rect?: Rect): Uint8Array {
  const r = rect ?? { x: 0, y: 0, width: src.width, height: src.height };
  if (r.x < 0 || r.y < 0 || r.width < 1 || r.height < 1 || r.x + r.width > src.width || r.y + r.height > src.height) {
    throw new RangeError(`crop ${JSON.stringify(r)} outside ${src.width}x${src.height}`);
  }
  const out = new Uint8Array(outWidth * outHeight * 3);
  const plane = new Float32Array(outWidth * outHeight * 3);
  resizeRgbToFloat(src, outWidth, outHeight, r, plane);
  // Weights are convex, so plane values lie in [0, 255]; +0.5 then truncation rounds to nearest.
  for (let i = 0; i < out.length; i++) out[i] = plane[i] + 0.5;
  return out;
}

/**
 * Same resampling, written as floats in 0..255 (HWC) into `out` (length outWidth*outHeight*3),
 * for callers that keep working in float (augmentation, normalisation).
 */
export function resizeRgbToFloat(src: RgbImage, outWidth: number, outHeight: number, r: Rect, out: Float32Array): void {
  const wx = axisWeights(r.width, outWidth), wy = axisWeights(r.height, outHeight);
  const sw = src.width, data = src.data;
  // Horizontal pass over the rows the vertical pass needs: rows r.y .. r.y+r.height-1.
  const tmp = new Float32Array(r.height * outWidth * 3);
  for (let y = 0; y < r.height; y++) {
    const rowBase = ((r.y + y) * sw + r.x) * 3;
    const tBase = y * outWidth * 3;
    for (let i = 0; i < outWidth; i++) {
      let R = 0, G = 0, B = 0;
      const o = wx.offset[i], c = wx.count[i];
      let p = rowBase + wx.start[i] * 3;
      for (let k = 0; k < c; k++, p += 3) {
        const w = wx.weights[o + k];
        R += w * data[p];
        G += w * data[p + 1];
        B += w * data[p + 2];
      }
      const t = tBase + i * 3;
      tmp[t] = R;
      tmp[t + 1] = G;
      tmp[t + 2] = B;
    }
  }
  const rowLen = outWidth * 3;
  for (let j = 0; j < outHeight; j++) {
    const o = wy.offset[j], c = wy.count[j], s = wy.start[j];
    const dBase = j * rowLen;
    for (let x = 0; x < rowLen; x++) out[dBase + x] = 0;
    for (let k = 0; k < c; k++) {
      const w = wy.weights[o + k];
      const tBase = (s + k) * rowLen;
      for (let x = 0; x < rowLen; x++) out[dBase + x] += w * tmp[tBase + x];
    }
  }
}

/** Resize a whole image to size x size (aspect ratio not kept, as the original project did). */
export function resizeSquare(src: RgbImage, size: number): RgbImage {
  if (src.width === size && src.height === size) return src;
  return { width: size, height: size, data: resizeRgb(src, size, size) };
}
