// Predicting with a checkpoint, the platform-neutral parts shared by Node's `predict` (inference.ts)
// and the web demo: the checkpoint's preprocessing, an image to the model's input, attention rollout
// and its heat-map overlay. No Node import here.
import type { RgbImage } from '../data/decode.ts';
import { resizeRgb, resizeSquare } from '../data/resize.ts';
import { centerCropRect, defaultCacheSize, sampleToTensor } from '../data/augment.ts';

export interface Preprocessing {
  imageSize: number;
  mean: [number, number, number];
  std: [number, number, number];
  /** centred fraction of the image side kept before resizing (1: none); `crop_pct` in the file */
  cropPct: number;
}

/** HF's ViTImageProcessor config, so transformers' pipelines preprocess the same way. */
export function preprocessorConfig(p: Preprocessing): Record<string, unknown> {
  return {
    image_processor_type: 'ViTImageProcessor',
    do_resize: true,
    size: { height: p.imageSize, width: p.imageSize },
    resample: 2,
    do_rescale: true,
    rescale_factor: 1 / 255,
    do_normalize: true,
    image_mean: p.mean,
    image_std: p.std,
    // timm's / HF's name for the centre crop; ViTImageProcessor has no crop, so only when one is used
    ...(p.cropPct < 1 ? { crop_pct: p.cropPct } : {}),
  };
}

/** The preprocessing a parsed preprocessor_config.json describes (HF ViTImageProcessor fields). */
export function parsePreprocessing(json: unknown): Preprocessing {
  const j = json as Record<string, any>;
  const size = j.size?.height ?? j.size?.shortest_edge ?? (typeof j.size === 'number' ? j.size : undefined);
  const triple = (v: unknown, fallback: number): [number, number, number] =>
    Array.isArray(v) && v.length === 3 && v.every((x) => typeof x === 'number') ? [v[0], v[1], v[2]] : [fallback, fallback, fallback];
  return {
    imageSize: typeof size === 'number' ? size : NaN,
    mean: j.do_normalize === false ? [0, 0, 0] : triple(j.image_mean, 0.5),
    std: j.do_normalize === false ? [1, 1, 1] : triple(j.image_std, 0.5),
    cropPct: typeof j.crop_pct === 'number' && j.crop_pct > 0 && j.crop_pct <= 1 ? j.crop_pct : 1,
  };
}

/** The preprocessing a model runs with: the checkpoint's (at the model's image size), else mean and std 0.5. */
export function modelPreprocessing(read: Preprocessing | null, imageSize: number): Preprocessing {
  return read ? { ...read, imageSize } : { imageSize, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5], cropPct: 1 };
}

/**
 * One image as the model's input, as the evaluation loader prepares it: resized to its cache side,
 * then the centre crop (crop_pct) resized to image_size, normalised with mean/std; CHW at out[offset..].
 */
export function imageToInput(image: RgbImage, p: Preprocessing, out: Float32Array, offset = 0, scratch?: Float32Array): void {
  const { imageSize: S, mean, std, cropPct } = p;
  const cacheSide = defaultCacheSize(S, cropPct < 1);
  sampleToTensor(resizeSquare(image, cacheSide), S, mean, std, out, offset, null, null, scratch, cropPct);
}

/**
 * Attention rollout (Abnar & Zuidema 2020) for one image: per layer average the heads, add the
 * identity (the residual path) and renormalise the rows, multiply the layers together, then take
 * the CLS token's row over the patch tokens. Each layer is [heads, T, T]; returns T - 1 values
 * scaled to 0..1.
 */
export function attentionRollout(layers: readonly Float32Array[], heads: number, tokens: number): Float32Array {
  const T = tokens;
  let rollout = new Float64Array(T * T);
  for (let i = 0; i < T; i++) rollout[i * T + i] = 1;
  for (const probs of layers) {
    const a = new Float64Array(T * T);
    for (let h = 0; h < heads; h++) for (let j = 0; j < T * T; j++) a[j] += probs[h * T * T + j] / heads;
    for (let i = 0; i < T; i++) {
      a[i * T + i] += 1;
      let sum = 0;
      for (let j = 0; j < T; j++) sum += a[i * T + j];
      for (let j = 0; j < T; j++) a[i * T + j] /= sum;
    }
    // rollout = a @ rollout (later layers on the left)
    const next = new Float64Array(T * T);
    for (let i = 0; i < T; i++) {
      for (let k = 0; k < T; k++) {
        const w = a[i * T + k];
        if (w === 0) continue;
        for (let j = 0; j < T; j++) next[i * T + j] += w * rollout[k * T + j];
      }
    }
    rollout = next;
  }
  const cls = rollout.subarray(1, T);
  let lo = Infinity, hi = -Infinity;
  for (const v of cls) {
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  return Float32Array.from(cls, (v) => (hi > lo ? (v - lo) / (hi - lo) : 0));
}

/** The rollout of one image's attentions (each layer [1, heads, T, T]) over its square patch grid. */
export function attentionGrid(layers: readonly Float32Array[], heads: number): { grid: Float32Array; rows: number; cols: number } {
  const tokens = Math.round(Math.sqrt(layers[0].length / heads));
  const side = Math.round(Math.sqrt(tokens - 1));
  return { grid: attentionRollout(layers, heads, tokens), rows: side, cols: side };
}

/** A blue-cyan-yellow-red colour map (jet-like) for t in 0..1. */
function heatColor(t: number): [number, number, number] {
  const c = (x: number) => Math.round(255 * Math.max(0, Math.min(1, x)));
  return [c(1.5 - Math.abs(4 * t - 3)), c(1.5 - Math.abs(4 * t - 2)), c(1.5 - Math.abs(4 * t - 1))];
}

/** The part of an image the model sees: its centred crop (the whole image without one). */
export function modelView(image: RgbImage, p: Preprocessing): RgbImage {
  if (p.cropPct >= 1) return image;
  const r = centerCropRect(image.width, image.height, p.cropPct);
  return { width: r.width, height: r.height, data: resizeRgb(image, r.width, r.height, r) };
}

/**
 * The image (its longer side at most maxSide, at least 224) with the attention grid upsampled
 * bilinearly over it as a heat map; RGBA pixels (inference.ts's attentionOverlayPng encodes them).
 */
export function attentionOverlay(
  image: RgbImage, grid: Float32Array, rows: number, cols: number, opts: { maxSide?: number; alpha?: number } = {},
): { width: number; height: number; data: Uint8Array } {
  const maxSide = opts.maxSide ?? 512, alpha = opts.alpha ?? 0.6;
  const scale = Math.max(224, Math.min(maxSide, Math.max(image.width, image.height))) / Math.max(image.width, image.height);
  const W = Math.max(1, Math.round(image.width * scale)), H = Math.max(1, Math.round(image.height * scale));
  const rgb = W === image.width && H === image.height ? image.data : resizeRgb(image, W, H);
  const out = new Uint8Array(W * H * 4);
  const sample = (gy: number, gx: number) => {
    // bilinear between patch centres, clamped at the borders
    const y = Math.min(Math.max(gy - 0.5, 0), rows - 1), x = Math.min(Math.max(gx - 0.5, 0), cols - 1);
    const y0 = Math.floor(y), x0 = Math.floor(x), y1 = Math.min(rows - 1, y0 + 1), x1 = Math.min(cols - 1, x0 + 1);
    const ty = y - y0, tx = x - x0;
    const top = grid[y0 * cols + x0] * (1 - tx) + grid[y0 * cols + x1] * tx;
    const bottom = grid[y1 * cols + x0] * (1 - tx) + grid[y1 * cols + x1] * tx;
    return top * (1 - ty) + bottom * ty;
  };
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const t = sample(((y + 0.5) / H) * rows, ((x + 0.5) / W) * cols);
      const heat = heatColor(t);
      const i = y * W + x;
      const a = alpha * (0.3 + 0.7 * t); // cool regions let the photo show through
      for (let ch = 0; ch < 3; ch++) out[4 * i + ch] = Math.round((1 - a) * rgb[3 * i + ch] + a * heat[ch]);
      out[4 * i + 3] = 255;
    }
  }
  return { width: W, height: H, data: out };
}
