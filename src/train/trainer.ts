// The training loop of the cats-vs-dogs trainer: data, model and optimizer from the parameters, then
// per epoch a progress bar, the original project's epoch line, metrics.jsonl, plot.png and the
// checkpoints `last/` (every epoch) and `best/` (best val_acc) in out_dir. `resume` continues from
// `last/`; `shouldStop` (Ctrl-C) ends the current step and saves `last/`; a NaN or Inf loss stops the
// run and leaves the checkpoints as they were.
//
// train() runs in steps: setUp() checks and builds everything (out_dir, the resume point, data, model,
// optimizer, loaders) without writing; then the images are decoded, openOutDir() makes the first
// write, and a TrainingRun trains, validates and saves epoch by epoch.
//
// Losses and predictions come back to the host one step late: the read of step s is queued before
// step s + 1 is dispatched and awaited after it, so the GPU always has the next step to run.
import { accessSync, appendFileSync, constants, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, rmdirSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { totalmem } from 'node:os';
import { Tensor, tidy } from '../tensor.ts';
import { noGrad } from '../autograd.ts';
import { getRngState, manualSeed, setRngState } from '../nn/random.ts';
import { ViTConfig } from '../vit/config.ts';
import { attentionKernel } from '../ops/attention.ts';
import { ViTForImageClassification } from '../vit/modeling.ts';
import { AdamW, type AdamWState } from '../optim/adamw.ts';
import { CONFIG_FILE, WEIGHTS_FILE, findCheckpointDir, writeFileAtomic } from '../io/files-node.ts';
import { scanDataset, type DataItem, type Dataset } from '../data/layouts.ts';
import { assertSeparateDatasets, stratifiedSplit } from '../data/split.ts';
import { ImageLoader, checkClassCounts, type Batch } from '../data/loader.ts';
import type { AugmentOptions } from '../data/augment.ts';
import { generateSyntheticCatsDogs } from '../data/synthetic.ts';
import type { TrainParams } from './params.ts';
import { ProgressBar, formatDuration, formatEpochLine, type ProgressStream } from './progress.ts';
import { renderTrainingPlot } from './plot.ts';
import {
  BEST_DIR, LAST_DIR, OPTIMIZER_FILE, STATE_FORMAT, TRAINER_STATE_FILE, classKey,
  readOptimizerState, readTrainerState, recoverCheckpointDir, writeCheckpoint,
  type EpochRecord, type PartialEpoch, type Preprocessing, type TrainerState,
} from './checkpoint.ts';

export const METRICS_FILE = 'metrics.jsonl';
export const PLOT_FILE = 'plot.png';
/** What the trainer writes into out_dir; --overwrite removes these and nothing else. */
export const OWNED_ENTRIES = [LAST_DIR, BEST_DIR, METRICS_FILE, PLOT_FILE];

/** A problem found before training starts (out_dir is left as it was, or not created). */
export class TrainerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TrainerError';
  }
}

export interface TrainOptions {
  params: TrainParams;
  /** replace a run already in out_dir (its checkpoints, metrics and plot; nothing else) */
  overwrite?: boolean;
  /** epoch lines and summaries (default console.log) */
  log?: (line: string) => void;
  /** warnings (default console.warn) */
  warn?: (message: string) => void;
  /** where progress bars go (default process.stderr); null for none */
  progress?: ProgressStream | null;
  /** polled after every step: true ends the run after saving `last/` (Ctrl-C) */
  shouldStop?: () => boolean;
  /** called after every optimizer step has been dispatched (tests) */
  onStep?: (info: { epoch: number; stepInEpoch: number; globalStep: number }) => void;
}

export type TrainStatus = 'completed' | 'interrupted' | 'diverged';

export interface TrainResult {
  status: TrainStatus;
  /** epochs completed */
  epochs: number;
  /** optimizer steps taken */
  globalStep: number;
  history: EpochRecord[];
  best: { epoch: number; val_acc: number } | null;
  outDir: string;
  seconds: number;
}

/** The learning rate before optimizer step `step` (0-based): linear warm-up, then cosine or constant. */
export function learningRate(step: number, p: { lr: number; schedule: 'cosine' | 'constant'; warmupSteps: number; totalSteps: number }): number {
  if (step < p.warmupSteps) return (p.lr * (step + 1)) / p.warmupSteps;
  if (p.schedule === 'constant') return p.lr;
  const span = Math.max(1, p.totalSteps - p.warmupSteps);
  const t = Math.min(1, (step - p.warmupSteps) / span);
  return 0.5 * p.lr * (1 + Math.cos(Math.PI * t));
}

/** The loader's augmentation from the params' switches; false when everything is off. */
export function loaderAugment(a: TrainParams['augment']): AugmentOptions | false {
  const jitter = a.color_jitter > 0 ? { brightness: a.color_jitter, contrast: a.color_jitter, saturation: a.color_jitter } : false;
  if (!a.random_resized_crop && !a.flip && !jitter) return false;
  return { crop: a.random_resized_crop, scale: a.crop_scale, hflip: a.flip, colorJitter: jitter };
}

/** The architecture fields that must agree between a checkpoint and the params on --resume. */
const ARCH_FIELDS = ['image_size', 'patch_size', 'num_channels', 'hidden_size', 'num_hidden_layers', 'num_attention_heads', 'intermediate_size', 'qkv_bias'] as const;

function paramsForState(p: TrainParams): Record<string, unknown> {
  const { sources: _sources, resume: _resume, ...rest } = p;
  return JSON.parse(JSON.stringify(rest)) as Record<string, unknown>;
}

/** metrics.jsonl line: NaN (not measured) becomes null. */
function metricsLine(r: EpochRecord): string {
  return JSON.stringify(r, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v)) + '\n';
}

function plotHistory(history: EpochRecord[]) {
  return history.map((h) => ({ epoch: h.epoch, loss: h.loss, acc: h.acc, val_loss: h.val_loss ?? NaN, val_acc: h.val_acc ?? NaN }));
}

const fmt = (x: number) => x.toFixed(4);

// ---------------------------------------------------------------------------------------------------
// Reading step results back one step late

interface StepStats { lossSum: number; correct: number; seen: number; finite: boolean }

class LaggedResults {
  private pending: { loss: Tensor; logits: Tensor; labels: Int32Array } | null = null;
  private reading: Promise<[Float32Array, Float32Array]> | null = null;

  /** Queues the copy of the pending step's results (call before dispatching the next step). */
  begin(): void {
    if (this.pending && !this.reading) {
      const p = this.pending;
      this.reading = Promise.all([p.loss.toArray(), p.logits.toArray()]);
    }
  }

  /** Waits for the pending step's numbers and makes `next` the pending step. */
  async settle(next: { loss: Tensor; logits: Tensor; labels: Int32Array } | null): Promise<StepStats | null> {
    this.begin();
    const p = this.pending, reading = this.reading;
    this.pending = next;
    this.reading = null;
    if (!p || !reading) return null;
    try {
      const [loss, logits] = await reading;
      const n = p.labels.length, classes = logits.length / n;
      let correct = 0;
      for (let i = 0; i < n; i++) {
        let best = 0;
        for (let c = 1; c < classes; c++) if (logits[i * classes + c] > logits[i * classes + best]) best = c;
        if (best === p.labels[i]) correct++;
      }
      return { lossSum: loss[0] * n, correct, seen: n, finite: Number.isFinite(loss[0]) };
    } finally {
      p.loss.dispose();
      p.logits.dispose();
    }
  }

  dispose(): void {
    this.pending?.loss.dispose();
    this.pending?.logits.dispose();
    this.pending = null;
  }
}

// ---------------------------------------------------------------------------------------------------
// Setting up: everything that can fail is checked before out_dir is written to

interface Data {
  classes: string[];
  train: DataItem[];
  val: DataItem[];
  counts: string;
}

function loadData(p: TrainParams, log: (s: string) => void, warn: (s: string) => void): Data {
  const train: Dataset = scanDataset(p.train_dir);
  train.warnings.forEach((w) => warn(w));
  let val: DataItem[];
  let trainItems = train.items;
  if (p.val_dir) {
    const v = scanDataset(p.val_dir);
    v.warnings.forEach((w) => warn(w));
    assertSeparateDatasets(train, v);
    const index = new Map(train.classes.map((c, i) => [classKey(c), i]));
    const map = v.classes.map((c) => index.get(classKey(c)));
    const missing = v.classes.filter((_, i) => map[i] === undefined);
    if (missing.length) {
      throw new TrainerError(`val_dir ${v.root} has classes the training data does not (${missing.join(', ')}; training classes: ${train.classes.join(', ')})`);
    }
    val = v.items.map((it) => ({ path: it.path, label: map[it.label]! }));
  } else {
    if (p.val_split <= 0) throw new TrainerError('no validation set: set val_dir, or val_split > 0 to hold out part of train_dir');
    const split = stratifiedSplit(train.items, p.val_split, p.seed);
    trainItems = split.train;
    val = split.val;
    if (val.length === 0) throw new TrainerError(`val_split ${p.val_split} of ${train.items.length} images leaves no validation images`);
  }
  if (train.classes.length < 2) throw new TrainerError(`train_dir ${train.root} has only one class (${train.classes[0]}); a classifier needs at least two`);
  const per = train.classes.map((c, i) => `${c} ${trainItems.filter((it) => it.label === i).length}`).join(', ');
  log(`Data: ${train.root} (${train.layout}): ${trainItems.length} training images (${per}), ${val.length} validation images${p.val_dir ? ` from ${p.val_dir}` : ` (val_split ${p.val_split})`}`);
  return { classes: train.classes, train: trainItems, val, counts: per };
}

/** Refuses to touch an out_dir holding another run; returns the entries of a run there. Reads only. */
function checkOutDir(p: TrainParams, overwrite: boolean): string[] {
  const dir = p.out_dir;
  if (p.resume && overwrite) throw new TrainerError('--resume and --overwrite contradict each other: choose one');
  if (!existsSync(dir)) {
    if (p.resume) throw new TrainerError(`nothing to resume: out_dir ${dir} does not exist`);
    return [];
  }
  // (a checkpoint that a crash left beside its folder counts as there)
  const present = OWNED_ENTRIES.filter((e) => existsSync(findCheckpointDir(join(dir, e))));
  if (!p.resume && present.length > 0 && !overwrite) {
    let what = '';
    try {
      const st = readTrainerState(findCheckpointDir(join(dir, LAST_DIR)));
      what = ` (${st.epoch} epoch${st.epoch === 1 ? '' : 's'} done of ${String(st.params.epochs)})`;
    } catch {
      // not readable: say only what is there
    }
    throw new TrainerError(
      `out_dir ${dir} already holds a training run${what}: ${present.join(', ')}. ` +
      'Pass --resume to continue it, --overwrite to replace it, or choose another --out-dir.',
    );
  }
  return present;
}

/**
 * Fails now rather than at the first checkpoint, an epoch later, when out_dir cannot be written: the
 * nearest of it and its parents that exists must be a folder that access() lets us write and that
 * really takes a new entry (a probe folder, removed at once; access() says yes to root even where
 * nobody can write, as in /sys).
 */
function checkWritable(outDir: string): void {
  let existing = resolve(outDir);
  while (!existsSync(existing)) existing = dirname(existing);
  if (!statSync(existing).isDirectory()) throw new TrainerError(`out_dir ${outDir}: ${existing} is a file, not a folder`);
  try {
    accessSync(existing, constants.W_OK | constants.X_OK);
    rmdirSync(mkdtempSync(join(existing, '.write-test-')));
  } catch (e) {
    throw new TrainerError(`out_dir ${outDir}: cannot write in ${existing} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); choose another --out-dir`);
  }
}

/** What --resume continues from: the checkpoint in out_dir/last/ (or the one a crash left beside it). */
interface ResumePoint {
  dir: string;
  state: TrainerState;
}

/** The files --resume reads from last/. */
const RESUME_FILES = [CONFIG_FILE, WEIGHTS_FILE, OPTIMIZER_FILE, TRAINER_STATE_FILE];

function readResumePoint(outDir: string): ResumePoint {
  const dir = findCheckpointDir(join(outDir, LAST_DIR));
  if (!existsSync(dir)) throw new TrainerError(`nothing to resume: out_dir ${outDir} has no checkpoint ${LAST_DIR}/ (run without --resume to start a new run)`);
  const missing = RESUME_FILES.filter((f) => !existsSync(join(dir, f)));
  if (missing.length) {
    throw new TrainerError(
      `--resume: the checkpoint ${dir} has no ${missing.join(' and no ')}, which --resume needs (it holds ${readdirSync(dir).sort().join(', ') || 'nothing'}); ` +
      'start a new run with --overwrite or another --out-dir',
    );
  }
  try {
    return { dir, state: readTrainerState(dir) };
  } catch (e) {
    throw new TrainerError(`--resume: ${(e as Error).message}`);
  }
}

/** The data: downloaded or generated first when asked, then scanned and split. */
async function prepareData(p: TrainParams, progress: ProgressStream | null, log: (s: string) => void, warn: (s: string) => void): Promise<Data> {
  if (p.download) await downloadInto(p.train_dir, progress, log);
  if (p.synthetic) {
    const n = 2 * p.synthetic.per_class;
    const t0 = performance.now();
    const res = await generateSyntheticCatsDogs(p.train_dir, { perClass: p.synthetic.per_class, size: p.synthetic.size, seed: p.seed });
    const dt = (performance.now() - t0) / 1000;
    if (dt > 0.5) log(`Generated the built-in cats-vs-dogs set: ${n} images of ${p.synthetic.size}px in ${res.dir} (${dt.toFixed(1)} s)`);
  }
  return loadData(p, log, warn);
}

/** The model: resumed from last/, fine-tuned from `pretrained` (with a head for these classes), or fresh. */
async function buildModel(p: TrainParams, data: Data, resume: ResumePoint | null): Promise<ViTForImageClassification> {
  const id2label = Object.fromEntries(data.classes.map((c, i) => [i, c]));
  const label2id = Object.fromEntries(data.classes.map((c, i) => [c, i]));
  manualSeed(p.seed);
  if (resume) {
    const saved = resume.state.classes.map(classKey).join(','), now = data.classes.map(classKey).join(',');
    if (saved !== now) throw new TrainerError(`--resume: the run in ${p.out_dir} was trained on classes ${resume.state.classes.join(', ')}, the data now has ${data.classes.join(', ')}`);
    const model = await ViTForImageClassification.fromPretrained(resume.dir, { warn: false });
    if (!p.pretrained) {
      const bad = ARCH_FIELDS.filter((k) => JSON.stringify((model.config as any)[k]) !== JSON.stringify((p.model as any)[k]));
      if (bad.length) {
        model.dispose();
        throw new TrainerError(`--resume: the checkpoint in ${resume.dir} has ${bad.map((k) => `model.${k} ${JSON.stringify((model.config as any)[k])}`).join(', ')}; the params ask for ${bad.map((k) => JSON.stringify((p.model as any)[k])).join(', ')}`);
      }
    }
    return model;
  }
  if (p.pretrained) {
    const model = await ViTForImageClassification.fromPretrained(p.pretrained, {
      config: { num_labels: data.classes.length, id2label, label2id }, ignoreMismatchedSizes: true,
    });
    const explicitSize = p.sources.image_size !== 'default' || p.sources.model !== 'default';
    if (explicitSize && model.config.image_size !== p.image_size) {
      model.dispose();
      throw new TrainerError(`image_size ${p.image_size} differs from the pretrained checkpoint's ${JSON.stringify(model.config.image_size)} (${p.pretrained}); leave image_size and model unset to use the checkpoint's`);
    }
    return model;
  }
  const init = { ...p.model, num_labels: data.classes.length, id2label, label2id };
  return new ViTForImageClassification(new ViTConfig(init as any));
}

/**
 * Napkin sizes in bytes of one training step of a ViT on `batch` images. `largest`: its biggest
 * buffer, the attention scores B·H·S·S' (S tokens, S' = S rounded up to 64 as the texture matmul pads
 * the rows; an over-estimate where it does not), the MLP's B·S·I or the pixels B·3·HW. `total`: the
 * parameters with their gradients and AdamW moments, plus what each layer keeps for the backward pass
 * (about 10 B·S·D + 2 B·S·I + 2 scores) and one layer more for the gradients being computed. With
 * `withScores` false (a fused attention kernel runs) there are no score buffers.
 */
export function stepMemory(c: ViTConfig, batch: number, withScores = true): { largest: number; largestName: string; total: number } {
  const [h, w] = c.imageHW, [ph, pw] = c.patchHW, C = c.num_channels;
  const S = tokensOf(c), D = c.hidden_size, I = c.intermediate_size, H = c.num_attention_heads, L = c.num_hidden_layers;
  const scores = withScores ? H * S * Math.ceil(S / 64) * 64 : 0, mlp = S * I, pixels = C * h * w;
  const [largestName, perImage] = [
    ['the attention scores (batch × heads × tokens × tokens)', scores],
    ['the MLP activations (batch × tokens × intermediate_size)', mlp],
    ['the pixels (batch × channels × image_size²)', pixels],
  ].reduce((a, b) => (b[1] > a[1] ? b : a)) as [string, number];
  const params = D * (C * ph * pw + S + 1) + L * (4 * D * D + 2 * D * I + 9 * D + I) + D * (c.numLabels + 2);
  const perLayer = 10 * S * D + 2 * S * I + 2 * scores;
  const total = 4 * (4 * params + batch * ((L + 1) * perLayer + 2 * pixels + 2 * S * D));
  return { largest: 4 * batch * perImage, largestName, total };
}

/** Tokens of a ViT's sequence: the patches and [CLS]. */
const tokensOf = (c: ViTConfig) => (c.imageHW[0] / c.patchHW[0]) * (c.imageHW[1] / c.patchHW[1]) + 1;

const gib = (bytes: number) => (bytes >= 2 ** 30 ? `${(bytes / 2 ** 30).toFixed(1)} GiB` : `${(bytes / 2 ** 20).toFixed(1)} MiB`);

/**
 * Refuses a batch_size whose training step cannot run: a buffer past the device's binding limit, or
 * (on a CPU device, whose memory is the machine's; WebGPU does not tell a GPU's) more memory than the
 * machine has. Both grow linearly with the batch, so the message can say what fits.
 */
function checkBatchFits(model: ViTForImageClassification, batch: number): void {
  const device = model.parameters()[0].device, limits = device.gpu.limits;
  const limit = Math.min(limits.maxStorageBufferBindingSize, limits.maxBufferSize);
  const limitName = limit === limits.maxBufferSize ? 'maxBufferSize' : 'maxStorageBufferBindingSize';
  const c = model.config;
  // where today's attention would need a score buffer past the limit, a fused kernel takes over (if one runs here)
  const scores = attentionKernel(device, { batch, seq: tokensOf(c), heads: c.num_attention_heads, headDim: c.hidden_size / c.num_attention_heads }) === 'unfused';
  const step = stepMemory(c, batch, scores), one = stepMemory(c, 1, scores), none = stepMemory(c, 0, scores);
  if (step.largest > limit) {
    throw new TrainerError(
      `batch_size ${batch} is too large for this device: one training step's largest buffer, ${step.largestName}, ` +
      `would take ${gib(step.largest)}, past the device's ${limitName} of ${gib(limit)}; batch_size ${Math.floor(limit / one.largest)} at most`,
    );
  }
  if (device.isCPU && step.total > totalmem()) {
    throw new TrainerError(
      `batch_size ${batch} is too large for this machine: one training step needs about ${gib(step.total)} ` +
      `(the activations of ${model.config.num_hidden_layers} layers), more than its ${gib(totalmem())} of memory; ` +
      `batch_size ${Math.max(0, Math.floor((totalmem() - none.total) / (one.total - none.total)))} at most`,
    );
  }
}

/** Where train() reports, and what it polls. */
interface RunIO {
  log: (line: string) => void;
  warn: (message: string) => void;
  progress: ProgressStream | null;
  shouldStop: () => boolean;
  onStep?: TrainOptions['onStep'];
}

/** Everything train() checks and builds before it writes to out_dir. */
interface Setup {
  data: Data;
  model: ViTForImageClassification;
  names: string[];
  optimizer: AdamW;
  /** the moments to load into the optimizer (--resume) */
  moments: AdamWState | null;
  trainLoader: ImageLoader;
  valLoader: ImageLoader;
  preprocessing: Preprocessing;
  resume: ResumePoint | null;
  /** the run's entries already in out_dir (what --overwrite removes) */
  present: string[];
}

async function setUp(p: TrainParams, overwrite: boolean, io: RunIO): Promise<Setup> {
  const present = checkOutDir(p, overwrite);
  checkWritable(p.out_dir);
  const resume = p.resume ? readResumePoint(p.out_dir) : null;
  const data = await prepareData(p, io.progress, io.log, io.warn);
  const model = await buildModel(p, data, resume);
  let optimizer: AdamW | null = null;
  try {
    checkBatchFits(model, p.batch_size);
    const names = [...model.namedParameters()].map(([n]) => n);
    optimizer = new AdamW(model.parameters(), { lr: p.lr, weightDecay: p.weight_decay });
    let moments: AdamWState | null = null;
    if (resume) {
      try {
        moments = await readOptimizerState(resume.dir, names, model.parameters().map((t) => t.size));
      } catch (e) {
        throw new TrainerError(`--resume: ${(e as Error).message}`);
      }
    }
    const imageSize = model.config.imageHW[0];
    const preprocessing: Preprocessing = { imageSize, mean: p.mean, std: p.std, cropPct: p.crop_pct };
    const common = { classes: data.classes, imageSize, mean: p.mean, std: p.std, batchSize: p.batch_size, seed: p.seed, cacheDir: p.cache_dir, workers: p.workers, onWarning: io.warn };
    let trainLoader: ImageLoader, valLoader: ImageLoader;
    try {
      trainLoader = new ImageLoader({ ...common, items: data.train, shuffle: true, augment: loaderAugment(p.augment) });
      valLoader = new ImageLoader({ ...common, items: data.val, shuffle: false, augment: false, centerCrop: p.crop_pct });
    } catch (e) {
      throw new TrainerError((e as Error).message);
    }
    return { data, model, names, optimizer, moments, trainLoader, valLoader, preprocessing, resume, present };
  } catch (e) {
    optimizer?.dispose();
    model.dispose();
    throw e;
  }
}

async function prepareLoader(loader: ImageLoader, label: string, progress: ProgressStream | null): Promise<void> {
  const todo = loader.items.length - loader.cachedCount;
  if (todo === 0 || !progress) {
    await loader.prepare();
    return;
  }
  let bar: ProgressBar | null = null;
  await loader.prepare((done, total) => {
    bar ??= new ProgressBar({ total, label, stream: progress });
    bar.tick(1);
    if (done === total) bar.done();
  });
  (bar as ProgressBar | null)?.done();
}

/**
 * The first write to out_dir: a checkpoint replacement a crash interrupted is finished or undone,
 * --overwrite removes the old run's entries, and the folder is made. Returns the first folder it
 * created (out_dir or a parent), if any.
 */
function openOutDir(p: TrainParams, present: string[], overwrite: boolean): string | undefined {
  for (const d of [LAST_DIR, BEST_DIR]) recoverCheckpointDir(join(p.out_dir, d));
  if (overwrite) for (const e of present) rmSync(join(p.out_dir, e), { recursive: true, force: true });
  return mkdirSync(p.out_dir, { recursive: true });
}

/** Removes out_dir again when the trainer made it and wrote nothing into it, up to the first folder it made. */
function removeIfUnused(outDir: string, created: string | undefined): void {
  if (!created) return;
  for (let d = resolve(outDir); ; d = dirname(d)) {
    try {
      rmdirSync(d); // only empty folders go
    } catch {
      return;
    }
    if (d === resolve(created) || d === dirname(d)) return;
  }
}

function describeModel(c: ViTConfig, params: number, preset: string | null): string {
  const shape = `image ${c.image_size}, patch ${c.patch_size}, hidden ${c.hidden_size}, ${c.num_hidden_layers} layers, ${c.num_attention_heads} heads, MLP ${c.intermediate_size}`;
  return `${preset ? `${preset} (${shape})` : shape}: ${(params / 1e6).toFixed(2)}M parameters`;
}

/**
 * The --download hook: src/data/download.ts's downloadPetImages(dir) fetches and extracts the archive
 * into dir/PetImages; train_dir may name that PetImages folder or the folder above it.
 */
async function downloadInto(trainDir: string, progress: ProgressStream | null, log: (s: string) => void): Promise<void> {
  // loaded only when asked for: the HTTP client and the unzipper are not needed otherwise
  const mod = await import('../data/download.ts');
  const dest = basename(trainDir) === 'PetImages' ? dirname(trainDir) : trainDir;
  const res = await mod.downloadPetImages(dest, { progress: progress !== null, ...(progress ? { progressStream: progress as NodeJS.WritableStream & { isTTY?: boolean } } : {}) });
  log(`Data downloaded: ${res.dataDir}`);
}

// ---------------------------------------------------------------------------------------------------
// The run

export async function train(opts: TrainOptions): Promise<TrainResult> {
  const p = opts.params;
  const io: RunIO = {
    log: opts.log ?? ((s: string) => console.log(s)),
    warn: opts.warn ?? ((s: string) => console.warn(s)),
    progress: opts.progress === undefined ? process.stderr : opts.progress,
    shouldStop: opts.shouldStop ?? (() => false),
    onStep: opts.onStep,
  };
  const started = performance.now();
  const setup = await setUp(p, !!opts.overwrite, io);
  let run: TrainingRun | null = null, created: string | undefined;
  try {
    await prepareLoader(setup.trainLoader, 'Decoding training images', io.progress);
    await prepareLoader(setup.valLoader, 'Decoding validation images', io.progress);
    checkClassCounts(setup.trainLoader, setup.valLoader, io.warn);
    // Only now is out_dir written to.
    created = openOutDir(p, setup.present, !!opts.overwrite);
    run = new TrainingRun(p, io, setup, started);
    return await run.run();
  } finally {
    run?.dispose();
    await setup.trainLoader.close();
    await setup.valLoader.close();
    setup.optimizer.dispose();
    setup.model.dispose();
    removeIfUnused(p.out_dir, created);
  }
}

/** Where an epoch's training ended. */
type EpochEnd = { status: 'done' | 'stopped'; step: number; images: number } | { status: 'diverged' };

/** One training run once set up: the epochs, each trained, validated, and saved. */
class TrainingRun {
  private history: EpochRecord[] = [];
  private best: { epoch: number; val_acc: number } | null = null;
  private partial: PartialEpoch = { loss_sum: 0, correct: 0, seen: 0, seconds: 0 };
  private startEpoch = 1;
  /** training images of startEpoch done before (resumed mid-epoch) */
  private skipImages = 0;
  private readonly results = new LaggedResults();
  private readonly lastDir: string;
  private readonly bestDir: string;
  private readonly stepsPerEpoch: number;
  private readonly schedule: Parameters<typeof learningRate>[1];

  constructor(private readonly p: TrainParams, private readonly io: RunIO, private readonly s: Setup, private readonly started: number) {
    this.lastDir = join(p.out_dir, LAST_DIR);
    this.bestDir = join(p.out_dir, BEST_DIR);
    this.stepsPerEpoch = s.trainLoader.batchesPerEpoch;
    this.schedule = {
      lr: p.lr, schedule: p.schedule, totalSteps: p.epochs * this.stepsPerEpoch,
      warmupSteps: Math.round(Math.min(p.warmup_epochs, p.epochs) * this.stepsPerEpoch),
    };
  }

  dispose(): void {
    this.results.dispose();
  }

  async run(): Promise<TrainResult> {
    const { p, s, io } = this;
    if (s.resume) await this.restore(s.resume, s.moments!);
    io.log(`Model: ${describeModel(s.model.config, s.model.numParameters(), p.pretrained ? `fine-tuning ${p.pretrained}` : p.model_preset)}`);
    io.log(`Training: ${p.epochs} epochs of ${this.stepsPerEpoch} steps (batch ${p.batch_size}), AdamW lr ${p.lr} (${p.schedule}, warm-up ${this.schedule.warmupSteps} steps), weight decay ${p.weight_decay}, label smoothing ${p.label_smoothing}${this.skipped ? `; ${this.skipped} undecodable files skipped` : ''}`);
    io.log(`Output: ${p.out_dir}`);
    if (this.startEpoch > p.epochs) {
      io.log(`Nothing to do: the run in ${p.out_dir} has finished its ${p.epochs} epochs (raise --epochs to train longer).`);
      return { ...this.result('completed', this.startEpoch - 1), seconds: 0 };
    }
    if (io.shouldStop()) return this.result('interrupted', this.startEpoch - 1);

    for (let epoch = this.startEpoch; epoch <= p.epochs; epoch++) {
      const epochStart = performance.now() - this.partial.seconds * 1000;
      const bar = io.progress ? new ProgressBar({ total: this.stepsPerEpoch, label: `EPOCH ${epoch}`, stream: io.progress }) : null;
      const trained = await this.trainEpoch(epoch, bar);
      if (trained.status === 'diverged') return this.result('diverged', epoch - 1);
      if (trained.status === 'stopped') {
        bar?.done();
        this.partial.seconds = (performance.now() - epochStart) / 1000;
        await this.save(this.stateNow(epoch - 1, trained, 'interrupt'));
        io.log(`Interrupted: saved ${this.lastDir} at epoch ${epoch}, step ${trained.step} of ${this.stepsPerEpoch}. Continue with --resume.`);
        return this.result('interrupted', epoch - 1);
      }

      // Validate (every eval_every epochs and after the last).
      let valLoss: number | null = null, valAcc: number | null = null;
      if (epoch % p.eval_every === 0 || epoch === p.epochs) {
        const v = await evaluate(s.model, s.valLoader, this.results, p.label_smoothing, io.shouldStop);
        if (v === 'stopped') {
          bar?.done();
          this.partial.seconds = (performance.now() - epochStart) / 1000;
          await this.save(this.stateNow(epoch - 1, trained, 'interrupt'));
          io.log(`Interrupted during validation: saved ${this.lastDir} after the training steps of epoch ${epoch}. Continue with --resume.`);
          return this.result('interrupted', epoch - 1);
        }
        if (v === 'diverged') {
          bar?.done();
          this.diverged(epoch, this.stepsPerEpoch);
          return this.result('diverged', epoch - 1);
        }
        [valLoss, valAcc] = v;
      }
      bar?.done();

      await this.endEpoch(epoch, epochStart, valLoss, valAcc);
      if (io.shouldStop() && epoch < p.epochs) {
        io.log(`Interrupted: saved ${this.lastDir} after epoch ${epoch}. Continue with --resume.`);
        return this.result('interrupted', epoch);
      }
    }
    const r = this.result('completed', p.epochs);
    io.log(`Done: ${p.epochs} epochs in ${formatDuration(r.seconds)}; ${this.best ? `best val_acc ${fmt(this.best.val_acc)} at epoch ${this.best.epoch} (${this.bestDir})` : 'no validation'}; last checkpoint ${this.lastDir}`);
    return r;
  }

  private get skipped(): number {
    return this.s.trainLoader.skipped.length + this.s.valLoader.skipped.length;
  }

  /** Continues the saved run: optimizer, RNG, history, and the place in the epoch (in images). */
  private async restore(resume: ResumePoint, moments: AdamWState): Promise<void> {
    const { p, s, io } = this;
    const st = resume.state;
    s.optimizer.loadStateDict(moments);
    setRngState(st.rng_state);
    this.history = st.history;
    this.best = st.best;
    this.startEpoch = st.epoch + 1;
    // the position in images, so that a changed batch_size neither repeats nor skips any
    this.skipImages = st.images_in_epoch ?? st.step_in_epoch * Number(st.params.batch_size);
    if (st.partial) this.partial = { ...st.partial };
    const now = paramsForState(p) as Record<string, unknown>;
    const changed = Object.keys(st.params).filter((k) => k !== 'file' && JSON.stringify(st.params[k]) !== JSON.stringify(now[k]));
    if (changed.length) io.log(`Resuming with changed parameters: ${changed.map((k) => `${k} ${JSON.stringify(st.params[k])} -> ${JSON.stringify((p as any)[k])}`).join('; ')}`);
    // metrics.jsonl holds exactly the checkpoint's epochs (a crash may have left it short).
    await writeFileAtomic(join(p.out_dir, METRICS_FILE), this.history.map(metricsLine).join(''));
    const where = this.skipImages ? `, after ${Math.min(this.skipImages, s.trainLoader.size)} of its ${s.trainLoader.size} training images` : '';
    io.log(`Resuming ${p.out_dir} at epoch ${this.startEpoch}${where} (optimizer step ${s.optimizer.stepCount})`);
  }

  /** The training steps of one epoch (from the resume point in the first); 'diverged' on a NaN/Inf loss. */
  private async trainEpoch(epoch: number, bar: ProgressBar | null): Promise<EpochEnd> {
    const { p, s, io, results } = this;
    const skip = this.skipImages, size = s.trainLoader.size;
    this.skipImages = 0;
    if (skip > 0) bar?.tick(skip >= size ? this.stepsPerEpoch : Math.floor(skip / p.batch_size));
    s.model.train();
    if (skip >= size) return { status: 'done', step: this.stepsPerEpoch, images: size };
    let step = 0, images = 0, stopped = false, bad = false;
    const account = (stats: StepStats | null, atStep: number) => {
      if (!stats) return;
      if (!stats.finite) {
        bad = true;
        bar?.done();
        this.diverged(epoch, atStep);
        return;
      }
      this.partial.loss_sum += stats.lossSum;
      this.partial.correct += stats.correct;
      this.partial.seen += stats.seen;
      bar?.tick(1, { loss: this.partial.loss_sum / this.partial.seen, acc: this.partial.correct / this.partial.seen });
    };
    for await (const batch of s.trainLoader.batches(epoch)) {
      const before = images;
      step++;
      images += batch.labels.length;
      if (images <= skip) continue; // all done before the resume point
      s.optimizer.lr = learningRate(s.optimizer.stepCount, this.schedule);
      results.begin();
      const out = trainStep(s.model, s.optimizer, withoutFirst(batch, Math.max(0, skip - before)), s.preprocessing.imageSize, p.label_smoothing);
      io.onStep?.({ epoch, stepInEpoch: step, globalStep: s.optimizer.stepCount });
      account(await results.settle(out), step - 1);
      if (bad) break;
      if (io.shouldStop()) {
        stopped = true;
        break;
      }
    }
    if (!bad) account(await results.settle(null), step);
    if (bad) return { status: 'diverged' };
    return { status: stopped ? 'stopped' : 'done', step, images };
  }

  /** The epoch's record, its line, best/ (when val_acc improved), last/, metrics.jsonl and the plot. */
  private async endEpoch(epoch: number, epochStart: number, valLoss: number | null, valAcc: number | null): Promise<void> {
    const { p, s, io } = this;
    const record: EpochRecord = {
      epoch, loss: this.partial.loss_sum / this.partial.seen, acc: this.partial.correct / this.partial.seen,
      val_loss: valLoss, val_acc: valAcc, lr: s.optimizer.lr, step: s.optimizer.stepCount,
      seconds: Math.round((performance.now() - epochStart) / 10) / 100,
    };
    this.partial = { loss_sum: 0, correct: 0, seen: 0, seconds: 0 };
    io.log(formatEpochLine({ ...record, val_loss: valLoss ?? NaN, val_acc: valAcc ?? NaN }));
    this.history = [...this.history, record];
    const improved = valAcc !== null && (this.best === null || valAcc > this.best.val_acc);
    if (improved) this.best = { epoch, val_acc: valAcc! };

    // Checkpoints: best/ first, so last/ never names a best that is not on disk.
    const state = this.stateNow(epoch, null, 'epoch');
    if (improved) await this.save(state, this.bestDir);
    await this.save(state);
    appendFileSync(join(p.out_dir, METRICS_FILE), metricsLine(record));
    await writeFileAtomic(join(p.out_dir, PLOT_FILE), renderTrainingPlot(plotHistory(state.history)));
  }

  /** The trainer state after `epochsDone` epochs and, mid-epoch, `at` in the next one. */
  private stateNow(epochsDone: number, at: { step: number; images: number } | null, reason: TrainerState['reason']): TrainerState {
    const { optimizer, data } = this.s;
    return {
      format: STATE_FORMAT, epoch: epochsDone, step_in_epoch: at?.step ?? 0, images_in_epoch: at?.images ?? 0,
      partial: at ? this.partial : null, global_step: optimizer.stepCount, lr: optimizer.lr, rng_state: getRngState(),
      classes: data.classes, best: this.best, history: this.history, params: paramsForState(this.p), saved_at: new Date().toISOString(), reason,
    };
  }

  private save(state: TrainerState, dir = this.lastDir): Promise<void> {
    const { model, optimizer, names, preprocessing } = this.s;
    return writeCheckpoint(dir, { model, optimizer: dir === this.lastDir ? optimizer : null, paramNames: names, state, preprocessing });
  }

  private diverged(epoch: number, step: number): void {
    const kept = existsSync(this.lastDir) ? `The last good checkpoint, ${this.lastDir}, is unchanged` : 'No checkpoint had been saved yet';
    this.io.warn(`Epoch ${epoch}, step ${step}: the loss is not finite (NaN or Inf); stopping. ${kept}. Try a lower lr (now ${this.p.lr}) or more warm-up.`);
  }

  private result(status: TrainStatus, epochs: number): TrainResult {
    return {
      status, epochs, globalStep: this.s.optimizer.stepCount, history: this.history, best: this.best,
      outDir: this.p.out_dir, seconds: (performance.now() - this.started) / 1000,
    };
  }
}

/** A batch without its first `k` images (the part of it done before a resume point). */
function withoutFirst(batch: Batch, k: number): Batch {
  if (k === 0) return batch;
  const per = batch.pixels.length / batch.labels.length;
  return { pixels: batch.pixels.subarray(k * per), labels: batch.labels.subarray(k), paths: batch.paths.slice(k) };
}

/** One optimizer step; returns the loss and logits (kept for the lagged read). */
function trainStep(model: ViTForImageClassification, optimizer: AdamW, batch: Batch, size: number, labelSmoothing: number) {
  return tidy(() => {
    const n = batch.labels.length;
    const pixels = Tensor.fromArray(batch.pixels, [n, 3, size, size]);
    const out = model.forward(pixels, { labels: batch.labels, labelSmoothing });
    out.loss!.backward();
    optimizer.step();
    optimizer.zeroGrad();
    return { loss: out.loss!, logits: out.logits, labels: batch.labels };
  });
}

/** Mean loss and accuracy over a loader, in eval mode without recording; 'stopped' on shouldStop. */
export async function evaluate(
  model: ViTForImageClassification, loader: ImageLoader, results: LaggedResults | null, labelSmoothing: number,
  shouldStop: () => boolean = () => false,
): Promise<[number, number] | 'stopped' | 'diverged'> {
  const lagged = results ?? new LaggedResults();
  const wasTraining = model.training;
  model.eval();
  let lossSum = 0, correct = 0, seen = 0, finite = true;
  const add = (s: StepStats | null) => {
    if (!s) return;
    finite &&= s.finite;
    lossSum += s.lossSum;
    correct += s.correct;
    seen += s.seen;
  };
  try {
    for await (const batch of loader.batches(0)) {
      lagged.begin();
      const out = tidy(() => noGrad(() => {
        const n = batch.labels.length;
        const pixels = Tensor.fromArray(batch.pixels, [n, 3, loader.imageSize, loader.imageSize]);
        const o = model.forward(pixels, { labels: batch.labels, labelSmoothing });
        return { loss: o.loss!, logits: o.logits, labels: batch.labels };
      }));
      add(await lagged.settle(out));
      if (shouldStop()) {
        lagged.dispose();
        return 'stopped';
      }
    }
    add(await lagged.settle(null));
  } finally {
    if (!results) lagged.dispose();
    model.train(wasTraining);
  }
  if (!finite) return 'diverged';
  return [lossSum / seen, correct / seen];
}

/** Lists what in out_dir belongs to the trainer (for messages and tests). */
export function ownedEntries(outDir: string): string[] {
  return existsSync(outDir) ? readdirSync(outDir).filter((e) => OWNED_ENTRIES.includes(e)) : [];
}
