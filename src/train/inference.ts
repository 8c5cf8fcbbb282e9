// Using a trained checkpoint: load it with its preprocessing, predict image files, attention rollout
// heat maps, and evaluation of a labelled folder (per-class counts and a confusion matrix). The
// platform-neutral parts (preprocessing, rollout, overlay) are in prediction.ts, shared with the web demo.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { Tensor, tidy } from '../tensor.ts';
import { noGrad } from '../autograd.ts';
import { softmax } from '../ops/loss.ts';
import { ViTForImageClassification } from '../vit/modeling.ts';
import { loadStateDict } from '../vit/pretrained.ts';
import { readCheckpointDir } from '../io/files-node.ts';
import { decodeFile, type RgbImage } from '../data/decode.ts';
import { scanDataset } from '../data/layouts.ts';
import { ImageLoader, defaultCacheSize } from '../data/loader.ts';
import { findCheckpointDir } from '../io/files-node.ts';
import { BEST_DIR, LAST_DIR, classKey, readPreprocessing, type Preprocessing } from './checkpoint.ts';
import { attentionGrid, attentionOverlay, imageToInput, modelPreprocessing } from './prediction.ts';

export { attentionRollout, modelView } from './prediction.ts';

export interface Classifier {
  model: ViTForImageClassification;
  labels: string[];
  preprocessing: Preprocessing;
  /** the folder the weights came from */
  dir: string;
  /** set when preprocessor_config.json was missing and defaults were used */
  note: string | null;
}

/**
 * Loads an HF checkpoint folder for inference. A trainer out_dir works too: its best/ (else last/)
 * checkpoint is used. Preprocessing comes from preprocessor_config.json (mean/std 0.5 without one).
 * A checkpoint without a trained classifier head, or whose weights contradict its config.json, is
 * an error.
 */
export async function loadClassifier(dir: string, opts: { cropPct?: number } = {}): Promise<Classifier> {
  let ckpt = findCheckpointDir(dir); // a crash mid-replacement may have left the folder beside it
  if (!existsSync(join(ckpt, 'config.json'))) {
    const sub = [BEST_DIR, LAST_DIR].map((d) => findCheckpointDir(join(dir, d))).find((d) => existsSync(join(d, 'config.json')));
    if (!sub) throw new Error(`--checkpoint ${dir}: no config.json there, nor in ${BEST_DIR}/ or ${LAST_DIR}/ (expected a checkpoint folder or a training out_dir)`);
    ckpt = sub;
  }
  const model = await loadTrainedModel(ckpt);
  const size = model.config.imageHW[0];
  const read = readPreprocessing(ckpt);
  const preprocessing = modelPreprocessing(read, size);
  if (opts.cropPct !== undefined) {
    if (!(opts.cropPct > 0 && opts.cropPct <= 1)) throw new RangeError(`crop_pct must be in (0, 1], got ${opts.cropPct}`);
    preprocessing.cropPct = opts.cropPct;
  }
  return {
    model, labels: model.config.labels ?? [], preprocessing, dir: ckpt,
    note: read ? null : `${ckpt} has no preprocessor_config.json: using mean and std 0.5`,
  };
}

/**
 * The checkpoint's model for inference. Unlike fromPretrained (which serves fine-tuning), nothing
 * may be freshly initialised: a missing head (a bare ViT backbone) or a tensor whose shape config.json
 * contradicts is an error, worded for the command line.
 */
async function loadTrainedModel(dir: string): Promise<ViTForImageClassification> {
  const ck = await readCheckpointDir(dir);
  const model = new ViTForImageClassification(ck.config);
  try {
    const report = loadStateDict(model, ck.tensors, {
      source: ck.weightsPath, allowMissing: ['classifier.'], allowUnexpected: ['vit.pooler.'], ignoreMismatchedSizes: true, warn: false,
    });
    if (report.mismatched.length) {
      const shapes = report.mismatched.map((m) => `tensor "${m.name}" has shape [${m.checkpoint}], the config asks for [${m.model}]`);
      throw new Error(`${ck.weightsPath} does not fit ${ck.configPath}: ${shapes.join('; ')} (both files must come from the same saved model)`);
    }
    if (report.newlyInitialized.length) {
      throw new Error(`${dir} has no classifier head (${report.newlyInitialized.join(', ')}): ${ck.weightsPath} holds a ViT ` +
        `backbone, which cannot label images; fine-tune it first (train with --pretrained ${dir})`);
    }
  } catch (e) {
    model.dispose();
    throw e;
  }
  return model.eval();
}

/** Non-finite logits mean broken weights (NaN, or so large that they overflow): an error naming the checkpoint. */
function checkLogits(c: Classifier, logits: Float32Array, what: string): void {
  const bad = logits.find((x) => !Number.isFinite(x));
  if (bad !== undefined) {
    throw new Error(`${c.dir}: the model gives non-finite logits (${bad}) for ${what}: its weights are broken (NaN, or large enough to overflow), as after a training run that diverged`);
  }
}

export interface Prediction {
  path: string;
  label: string;
  index: number;
  probability: number;
  probabilities: number[];
  /** CLS attention rollout over the patch grid (rows x cols, 0..1), when asked for */
  attention?: { grid: Float32Array; rows: number; cols: number };
}

export type PredictResult = Prediction | { path: string; error: string };

/**
 * Predicts the given images (decoded in this thread, resized to the model's square input as in
 * validation). A file that cannot be decoded gets { path, error } instead of a prediction.
 */
export async function predictImages(c: Classifier, paths: string[], opts: { attention?: boolean; batchSize?: number } = {}): Promise<PredictResult[]> {
  const S = c.preprocessing.imageSize;
  const per = 3 * S * S;
  const scratch = new Float32Array(per);
  const results: PredictResult[] = [];
  const inputs: { path: string; pixels: Float32Array; slot: number }[] = [];
  for (const path of paths) {
    try {
      const pixels = new Float32Array(per);
      imageToInput(decodeFile(path), c.preprocessing, pixels, 0, scratch);
      inputs.push({ path, pixels, slot: results.length });
      results.push({ path, error: 'not predicted' });
    } catch (e) {
      results.push({ path, error: (e as Error).message });
    }
  }
  const bs = opts.attention ? 1 : opts.batchSize ?? 32;
  const L = c.labels.length;
  for (let i = 0; i < inputs.length; i += bs) {
    const chunk = inputs.slice(i, i + bs);
    const pixels = new Float32Array(chunk.length * per);
    chunk.forEach((it, k) => pixels.set(it.pixels, k * per));
    const { logits, probs, attentions } = tidy(() => noGrad(() => {
      const o = c.model.forward(Tensor.fromArray(pixels, [chunk.length, 3, S, S]), { outputAttentions: !!opts.attention });
      return { logits: o.logits, probs: softmax(o.logits), attentions: o.attentions ?? [] };
    }));
    const l = await logits.toArray();
    const p = await probs.toArray();
    logits.dispose();
    const layers: Float32Array[] = [];
    for (const a of attentions) layers.push(await a.toArray());
    probs.dispose();
    for (const a of attentions) a.dispose();
    checkLogits(c, l, chunk.length > 1 ? `${chunk[0].path} and the ${chunk.length - 1} other images of its batch` : chunk[0].path);
    chunk.forEach((it, k) => {
      const row = Array.from(p.subarray(k * L, (k + 1) * L));
      const index = row.indexOf(Math.max(...row));
      const pred: Prediction = { path: it.path, label: c.labels[index] ?? String(index), index, probability: row[index], probabilities: row };
      if (opts.attention && layers.length) {
        // one image per forward here: each layer is [1, heads, T, T]
        pred.attention = attentionGrid(layers, c.model.config.num_attention_heads);
      }
      results[it.slot] = pred;
    });
  }
  return results;
}

/**
 * The image (its longer side at most maxSide, at least 224) with the attention grid upsampled
 * bilinearly over it as a heat map; PNG bytes.
 */
export function attentionOverlayPng(image: RgbImage, grid: Float32Array, rows: number, cols: number, opts: { maxSide?: number; alpha?: number } = {}): Uint8Array {
  const { width, height, data } = attentionOverlay(image, grid, rows, cols, opts);
  const png = new PNG({ width, height });
  png.data.set(data);
  return new Uint8Array(PNG.sync.write(png));
}

export interface EvalReport {
  /** the model's labels, the confusion matrix's axes */
  labels: string[];
  /** confusion[true][predicted] */
  confusion: number[][];
  total: number;
  correct: number;
  accuracy: number;
  skipped: number;
  /** where the data came from */
  root: string;
  layout: string;
}

/**
 * Evaluates a labelled folder (any supported layout). Its class names are matched to the model's
 * labels loosely (cats / cat / Cat); a class the model does not know is an error.
 */
export async function evaluateFolder(
  c: Classifier, dataDir: string, opts: { batchSize?: number; workers?: number; cacheDir?: string | null; onWarning?: (m: string) => void } = {},
): Promise<EvalReport> {
  const ds = scanDataset(dataDir);
  const index = new Map(c.labels.map((l, i) => [classKey(l), i]));
  const map = ds.classes.map((name) => index.get(classKey(name)));
  const unknown = ds.classes.filter((_, i) => map[i] === undefined);
  if (unknown.length) throw new Error(`--data ${ds.root}: classes ${unknown.join(', ')} are not among the model's labels (${c.labels.join(', ')})`);
  const items = ds.items.map((it) => ({ path: it.path, label: map[it.label]! }));
  const { imageSize, mean, std, cropPct } = c.preprocessing;
  const loader = new ImageLoader({
    items, classes: c.labels, imageSize, mean, std, batchSize: opts.batchSize ?? 64, shuffle: false, augment: false, centerCrop: cropPct,
    cacheDir: opts.cacheDir ?? null, workers: opts.workers, onWarning: opts.onWarning,
  });
  const L = c.labels.length;
  const confusion = Array.from({ length: L }, () => new Array<number>(L).fill(0));
  try {
    for await (const batch of loader.batches(0)) {
      const n = batch.labels.length;
      const logits = tidy(() => noGrad(() => c.model.forward(Tensor.fromArray(batch.pixels, [n, 3, imageSize, imageSize])).logits));
      const v = await logits.toArray();
      logits.dispose();
      checkLogits(c, v, `images of ${ds.root}`);
      for (let i = 0; i < n; i++) {
        let best = 0;
        for (let k = 1; k < L; k++) if (v[i * L + k] > v[i * L + best]) best = k;
        confusion[batch.labels[i]][best]++;
      }
    }
  } finally {
    await loader.close();
  }
  const total = confusion.flat().reduce((a, b) => a + b, 0);
  const correct = confusion.reduce((a, row, i) => a + row[i], 0);
  return {
    labels: c.labels, confusion, total, correct, accuracy: total ? correct / total : 0,
    skipped: loader.skipped.length, root: ds.root, layout: ds.layout,
  };
}

/** The report as text: per-class counts, the confusion matrix, and `accuracy: 0.xxxx` last. */
export function formatEvalReport(r: EvalReport): string {
  const w = Math.max(8, ...r.labels.map((l) => l.length + 2));
  const pad = (s: string | number, n = w) => String(s).padStart(n);
  const lines: string[] = [];
  lines.push(`${'class'.padEnd(w)}${pad('images', 9)}${pad('correct', 9)}${pad('accuracy', 10)}`);
  r.labels.forEach((l, i) => {
    const n = r.confusion[i].reduce((a, b) => a + b, 0);
    lines.push(`${l.padEnd(w)}${pad(n, 9)}${pad(r.confusion[i][i], 9)}${pad(n ? (r.confusion[i][i] / n).toFixed(4) : '-', 10)}`);
  });
  lines.push('');
  lines.push('Confusion matrix (rows: true class, columns: predicted):');
  lines.push(`${''.padEnd(w)}${r.labels.map((l) => pad(l)).join('')}`);
  r.labels.forEach((l, i) => lines.push(`${l.padEnd(w)}${r.confusion[i].map((v) => pad(v)).join('')}`));
  lines.push('');
  lines.push(`accuracy: ${r.accuracy.toFixed(4)}`);
  return lines.join('\n');
}
