// The web demo's logic, without the DOM: loading a checkpoint from files, decoding photos with the
// browser, predicting with Node's preprocessing and attention rollout, training on the built-in
// synthetic set, and the trained model as checkpoint files. main.ts wires it to the page; the browser
// tests call it through `window.demo`.
/// <reference lib="dom" />
import {
  AdamW, Device, Tensor, ViTConfig, ViTForImageClassification, checkpointFiles, kernelVariants, memoryFiles, manualSeed, noGrad, ops, tidy,
} from '../../src/index.ts';
import type { RgbImage } from '../../src/data/decode.ts';
import { DEFAULT_DECODE_LIMITS, DecodeError, decodeJpeg, rgbaOverBlack, sniffFormat } from '../../src/data/image-format.ts';
import { mixSeed, rng, shuffleInPlace } from '../../src/data/random.ts';
import { SYNTHETIC_CLASSES, syntheticSample } from '../../src/data/synthetic-draw.ts';
import {
  attentionGrid, attentionOverlay, imageToInput, modelPreprocessing, modelView, parsePreprocessing, preprocessorConfig, type Preprocessing,
} from '../../src/train/prediction.ts';
import { modelPreset } from '../../src/vit/presets.ts';
import { formatEpochLine } from '../../src/train/progress.ts';

export const CONFIG_FILE = 'config.json';
export const WEIGHTS_FILE = 'model.safetensors';
export const PREPROCESSOR_FILE = 'preprocessor_config.json';

export interface Classifier {
  model: ViTForImageClassification;
  labels: string[];
  preprocessing: Preprocessing;
  /** where it came from, for the page */
  source: string;
  /** set when preprocessor_config.json was missing and defaults were used */
  note: string | null;
}

/**
 * A classifier from a checkpoint: files by name (config.json, model.safetensors, optional
 * preprocessor_config.json) or a URL folder, read by the library's fromPretrained (so bad files get
 * Node's messages); `where` names it in the page.
 */
export async function loadCheckpoint(source: Map<string, Uint8Array> | string, where: string): Promise<Classifier> {
  const files = typeof source === 'string' ? checkpointFiles(source) : memoryFiles(source, where);
  const model = await ViTForImageClassification.fromPretrained(files, { warn: false });
  let read: Preprocessing | null = null;
  const pre = await files.read(PREPROCESSOR_FILE);
  if (pre) {
    try {
      read = parsePreprocessing(JSON.parse(new TextDecoder().decode(pre)));
    } catch (err) {
      model.dispose();
      throw new Error(`${files.path(PREPROCESSOR_FILE)}: ${(err as Error).message}`, { cause: err });
    }
  }
  const config = model.config;
  return {
    model, labels: config.labels ?? [], preprocessing: modelPreprocessing(read, config.imageHW[0]), source: where,
    note: read ? null : `${where} has no ${PREPROCESSOR_FILE}: using mean and std 0.5`,
  };
}

/** The checkpoint under `base` (a URL folder); null when it has no config.json (404). */
export async function fetchCheckpoint(base: string): Promise<Classifier | null> {
  if (!(await fetch(new URL(CONFIG_FILE, new URL(base, location.href))).then((r) => r.ok, () => false))) return null;
  return loadCheckpoint(new URL(base, location.href).href, new URL(base, location.href).pathname.replace(/\/$/, ''));
}

/**
 * Decodes a photo as decode.ts does, to packed RGB at its own size (the resize to the model's input is
 * Node's, in JS: no canvas resampling). JPEG with jpeg-js as in Node: the browser's decoder
 * (libjpeg-turbo) gives pixels a few levels off, which moved probabilities by ~3e-3. PNG (lossless) with
 * the browser (createImageBitmap, canvas getImageData), alpha over black as decode.ts. Other files get
 * decode.ts's DecodeError messages.
 */
export async function decodePhoto(bytes: Uint8Array, name: string): Promise<RgbImage> {
  if (bytes.length === 0) throw new DecodeError(name, 'empty file');
  const format = sniffFormat(bytes);
  if (!format) throw new DecodeError(name, 'not a JPEG or PNG file');
  if (format === 'jpeg') {
    try {
      return decodeJpeg(bytes, DEFAULT_DECODE_LIMITS);
    } catch (e) {
      throw new DecodeError(name, `jpeg: ${(e as Error).message}`);
    }
  }
  let bitmap: ImageBitmap;
  try {
    bitmap = await createImageBitmap(new Blob([bytes as BlobPart]), { colorSpaceConversion: 'none', premultiplyAlpha: 'none', imageOrientation: 'none' });
  } catch (e) {
    throw new DecodeError(name, `${format}: ${(e as Error).message || 'the browser cannot decode it'}`);
  }
  const { width, height } = bitmap;
  const canvas = new OffscreenCanvas(width, height);
  const ctx = canvas.getContext('2d', { willReadFrequently: true })!;
  ctx.drawImage(bitmap, 0, 0);
  bitmap.close();
  const rgba = ctx.getImageData(0, 0, width, height, { colorSpace: 'srgb' }).data;
  return { width, height, data: rgbaOverBlack(rgba, width * height) };
}

export interface PagePrediction {
  name: string;
  label: string;
  index: number;
  probability: number;
  probabilities: number[];
  /** the photo with the rollout heat map over it (RGBA) */
  overlay: { width: number; height: number; data: Uint8Array };
}

/** predictImages' forward for one decoded photo, with the attention rollout overlay. */
export async function predictPhoto(c: Classifier, image: RgbImage, name: string): Promise<PagePrediction> {
  const S = c.preprocessing.imageSize;
  const pixels = new Float32Array(3 * S * S);
  imageToInput(image, c.preprocessing, pixels);
  const { probs, attentions } = tidy(() => noGrad(() => {
    const o = c.model.forward(Tensor.fromArray(pixels, [1, 3, S, S]), { outputAttentions: true });
    return { probs: ops.softmax(o.logits), attentions: o.attentions ?? [] };
  }));
  const row = Array.from(await probs.toArray());
  const layers: Float32Array[] = [];
  for (const a of attentions) layers.push(await a.toArray());
  probs.dispose();
  for (const a of attentions) a.dispose();
  const index = row.indexOf(Math.max(...row));
  const { grid, rows, cols } = attentionGrid(layers, c.model.config.num_attention_heads);
  // the heat map over the part of the photo the model sees (its centre crop), as `predict --attention-map`
  return {
    name, label: c.labels[index] ?? String(index), index, probability: row[index], probabilities: row,
    overlay: attentionOverlay(modelView(image, c.preprocessing), grid, rows, cols),
  };
}

// ---- training on the built-in synthetic set ----------------------------------------------------------

export interface TrainSettings {
  /** images per class (80% train, 20% validation, as the built-in demo's val_split 0.2) */
  perClass: number;
  epochs: number;
  batchSize: number;
  lr: number;
  seed: number;
  /** the synthetic images' side (the built-in demo's synthetic.size) */
  size: number;
}

/**
 * The panel's defaults: the built-in demo's model (vit-nano-32, 2 layers), optimiser and image size, a
 * smaller set: 120 steps, where the model starts to learn (val_acc ~0.67 at epoch 6, 4-5 min on SwiftShader).
 */
export const DEFAULT_TRAIN: TrainSettings = { perClass: 400, epochs: 6, batchSize: 32, lr: 1e-3, seed: 0, size: 64 };

export interface EpochResult { epoch: number; loss: number; acc: number; val_loss: number; val_acc: number; line: string }

export interface TrainCallbacks {
  onStep?: (s: { step: number; steps: number; loss: number }) => void;
  onEpoch?: (e: EpochResult) => void;
  shouldStop?: () => boolean;
}

/** The demo model: the built-in demo's (vit-nano-32 with 2 layers), cat/dog labels. */
export function demoConfig(): ViTConfig {
  const id2label = Object.fromEntries(SYNTHETIC_CLASSES.map((c, i) => [i, c]));
  const label2id = Object.fromEntries(SYNTHETIC_CLASSES.map((c, i) => [c, i]));
  return new ViTConfig({ ...modelPreset('vit-nano-32'), num_hidden_layers: 2, num_labels: 2, id2label, label2id } as never);
}

export const DEMO_PREPROCESSING = (size: number): Preprocessing => ({ imageSize: size, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5], cropPct: 1 });

/**
 * Trains the demo model on the synthetic set drawn in the page (the drawing of `npm run catsvdogs`,
 * without its JPEG round trip and augmentation), AdamW with weight decay 0.05 and label smoothing 0.1
 * as the built-in demo (src/train/demo-params.ts); one epoch line per epoch.
 */
export async function trainSynthetic(s: TrainSettings, cb: TrainCallbacks = {}): Promise<{ classifier: Classifier; epochs: EpochResult[]; losses: number[] }> {
  manualSeed(s.seed);
  const config = demoConfig();
  const S = config.imageHW[0];
  const preprocessing = DEMO_PREPROCESSING(S);
  const per = 3 * S * S;
  const train: { pixels: Float32Array; label: number }[] = [], val: typeof train = [];
  const nVal = Math.round(0.2 * s.perClass);
  for (let label = 0; label < 2; label++) {
    for (let i = 0; i < s.perClass; i++) {
      const pixels = new Float32Array(per);
      imageToInput(syntheticSample(s.seed, label, i, s.size).image, preprocessing, pixels);
      (i < s.perClass - nVal ? train : val).push({ pixels, label });
    }
    await new Promise((r) => setTimeout(r, 0)); // let the page paint
  }
  const model = new ViTForImageClassification(config);
  const optimizer = new AdamW(model.parameters(), { lr: s.lr, weightDecay: 0.05 });
  const steps = s.epochs * Math.ceil(train.length / s.batchSize);
  const epochs: EpochResult[] = [], losses: number[] = [];
  const batchOf = (items: typeof train) => {
    const x = new Float32Array(items.length * per);
    items.forEach((it, k) => x.set(it.pixels, k * per));
    return { x, labels: items.map((it) => it.label) };
  };
  /** mean loss and accuracy of one pass; trains when `learn` */
  const pass = async (items: typeof train, learn: boolean) => {
    let lossSum = 0, correct = 0;
    for (let i = 0; i < items.length; i += s.batchSize) {
      const { x, labels } = batchOf(items.slice(i, i + s.batchSize));
      const n = labels.length;
      const run = () => model.forward(Tensor.fromArray(x, [n, 3, S, S]), { labels, labelSmoothing: 0.1 });
      const { loss, logits } = tidy(() => {
        const out = learn ? run() : noGrad(run);
        if (learn) {
          out.loss!.backward();
          optimizer.step();
          optimizer.zeroGrad();
        }
        return { loss: out.loss!, logits: out.logits };
      });
      const l = (await loss.toArray())[0], v = await logits.toArray();
      loss.dispose();
      logits.dispose();
      lossSum += l * n;
      for (let k = 0; k < n; k++) if ((v[2 * k + 1] > v[2 * k] ? 1 : 0) === labels[k]) correct++;
      if (learn) {
        losses.push(l);
        cb.onStep?.({ step: losses.length, steps, loss: l });
      }
      if (cb.shouldStop?.()) break;
    }
    return { loss: lossSum / items.length, acc: correct / items.length };
  };
  for (let epoch = 1; epoch <= s.epochs && !cb.shouldStop?.(); epoch++) {
    shuffleInPlace(train, rng(mixSeed(s.seed, epoch)));
    model.train();
    const t = await pass(train, true);
    model.eval();
    const v = await pass(val, false);
    const e = { epoch, loss: t.loss, acc: t.acc, val_loss: v.loss, val_acc: v.acc };
    const result = { ...e, line: formatEpochLine(e) };
    epochs.push(result);
    cb.onEpoch?.(result);
  }
  model.eval();
  return { classifier: { model, labels: config.labels, preprocessing, source: 'trained in this page', note: null }, epochs, losses };
}

/** The checkpoint files Node's fromPretrained and `predict` load (savePretrained's, plus the preprocessing). */
export async function checkpointFilesOf(c: Classifier): Promise<Map<string, Uint8Array>> {
  return c.model.pretrainedFiles({ [PREPROCESSOR_FILE]: JSON.stringify(preprocessorConfig(c.preprocessing), null, 2) + '\n' });
}

/** Logits of a batch of inputs (the tests compare them with Node's). */
export async function logitsOf(c: Classifier, pixels: Float32Array, n: number): Promise<Float32Array> {
  const S = c.preprocessing.imageSize;
  const logits = tidy(() => noGrad(() => c.model.forward(Tensor.fromArray(pixels, [n, 3, S, S])).logits));
  const v = await logits.toArray();
  logits.dispose();
  return v;
}

/** The matmul kernel variant in use, for the status line. */
export function kernelVariantsOf(device: Device): string {
  return kernelVariants(device).matmul;
}

export { Device, syntheticSample, imageToInput };
