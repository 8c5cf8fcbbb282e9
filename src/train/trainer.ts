// The training loop of the cats-vs-dogs trainer: data, model and optimizer from the parameters, then
// per epoch a progress bar, the original project's epoch line, metrics.jsonl, plot.png and the
// checkpoints `last/` (every epoch) and `best/` (best val_acc) in out_dir. `resume` continues from
// `last/`; `shouldStop` (Ctrl-C) ends the current step and saves `last/`; a NaN or Inf loss stops the
// run and leaves the checkpoints as they were.
//
// Losses and predictions come back to the host one step late: the read of step s is queued before
// step s + 1 is dispatched and awaited after it, so the GPU always has the next step to run.
import { appendFileSync, existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { Tensor, tidy } from '../tensor.ts';
import { noGrad } from '../autograd.ts';
import { getRngState, manualSeed, setRngState } from '../nn/random.ts';
import { ViTConfig } from '../vit/config.ts';
import { ViTForImageClassification } from '../vit/modeling.ts';
import { AdamW } from '../optim/adamw.ts';
import { writeFileAtomic } from '../io/files-node.ts';
import { scanDataset, type DataItem, type Dataset } from '../data/layouts.ts';
import { assertSeparateDatasets, stratifiedSplit } from '../data/split.ts';
import { ImageLoader, checkClassCounts, type Batch } from '../data/loader.ts';
import type { AugmentOptions } from '../data/augment.ts';
import { generateSyntheticCatsDogs } from '../data/synthetic.ts';
import type { TrainParams } from './params.ts';
import { ProgressBar, formatDuration, formatEpochLine, type ProgressStream } from './progress.ts';
import { renderTrainingPlot } from './plot.ts';
import {
  readOptimizerState, readTrainerState, recoverCheckpointDir, writeCheckpoint, STATE_FORMAT,
  type EpochRecord, type PartialEpoch, type Preprocessing, type TrainerState,
} from './checkpoint.ts';

export const LAST_DIR = 'last';
export const BEST_DIR = 'best';
export const METRICS_FILE = 'metrics.jsonl';
export const PLOT_FILE = 'plot.png';
/** What the trainer writes into out_dir; --overwrite removes these and nothing else. */
export const OWNED_ENTRIES = [LAST_DIR, BEST_DIR, METRICS_FILE, PLOT_FILE];

/** A problem found before training starts (nothing in out_dir has been touched). */
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

/** Class names compared loosely, so "cats" (folders), "cat" (Kaggle names) and "Cat" (PetImages) meet. */
export function classKey(name: string): string {
  return name.toLowerCase().replace(/s$/, '');
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
// Setting up

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

/** Refuses to touch an out_dir holding another run; returns the entries of a run there. */
function checkOutDir(p: TrainParams, overwrite: boolean): string[] {
  const dir = p.out_dir;
  if (p.resume && overwrite) throw new TrainerError('--resume and --overwrite contradict each other: choose one');
  if (!existsSync(dir)) {
    if (p.resume) throw new TrainerError(`nothing to resume: out_dir ${dir} does not exist`);
    return [];
  }
  recoverCheckpointDir(join(dir, LAST_DIR));
  recoverCheckpointDir(join(dir, BEST_DIR));
  const present = OWNED_ENTRIES.filter((e) => existsSync(join(dir, e)));
  if (p.resume) {
    if (!existsSync(join(dir, LAST_DIR, 'trainer_state.json'))) {
      throw new TrainerError(`nothing to resume: out_dir ${dir} has no checkpoint ${LAST_DIR}/ (run without --resume to start a new run)`);
    }
  } else if (present.length > 0 && !overwrite) {
    let what = '';
    try {
      const st = readTrainerState(join(dir, LAST_DIR));
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

function describeModel(c: ViTConfig, params: number, preset: string | null): string {
  const shape = `image ${c.image_size}, patch ${c.patch_size}, hidden ${c.hidden_size}, ${c.num_hidden_layers} layers, ${c.num_attention_heads} heads, MLP ${c.intermediate_size}`;
  return `${preset ? `${preset} (${shape})` : shape}: ${(params / 1e6).toFixed(2)}M parameters`;
}

/**
 * The --download hook: src/data/download.ts's downloadPetImages(dir) fetches and extracts the archive
 * into dir/PetImages; train_dir may name that PetImages folder or the folder above it.
 */
async function downloadInto(trainDir: string, progress: ProgressStream | null, log: (s: string) => void): Promise<void> {
  const url = new URL('../data/download.ts', import.meta.url);
  if (!existsSync(url)) throw new TrainerError('download: this build has no downloader (src/data/download.ts); fetch the PetImages archive yourself and set train_dir');
  const mod = (await import(url.href)) as { downloadPetImages?: (dir: string, opts?: Record<string, unknown>) => Promise<{ dataDir: string }> };
  if (!mod.downloadPetImages) throw new TrainerError('download: src/data/download.ts has no downloadPetImages()');
  const dest = basename(trainDir) === 'PetImages' ? dirname(trainDir) : trainDir;
  const res = await mod.downloadPetImages(dest, { progress: progress !== null, ...(progress ? { progressStream: progress } : {}) });
  log(`Data downloaded: ${res.dataDir}`);
}

// ---------------------------------------------------------------------------------------------------
// The run

export async function train(opts: TrainOptions): Promise<TrainResult> {
  const p = opts.params;
  const log = opts.log ?? ((s: string) => console.log(s));
  const warn = opts.warn ?? ((s: string) => console.warn(s));
  const progress = opts.progress === undefined ? process.stderr : opts.progress;
  const shouldStop = opts.shouldStop ?? (() => false);
  const started = performance.now();
  const outDir = p.out_dir;
  const lastDir = join(outDir, LAST_DIR), bestDir = join(outDir, BEST_DIR);

  // 1. Everything that can fail without writing to out_dir.
  const present = checkOutDir(p, !!opts.overwrite);
  let resumeState: TrainerState | null = null;
  if (p.resume) {
    try {
      resumeState = readTrainerState(lastDir);
    } catch (e) {
      throw new TrainerError(`--resume: ${(e as Error).message}`);
    }
  }

  if (p.download) await downloadInto(p.train_dir, progress, log);
  if (p.synthetic) {
    const n = 2 * p.synthetic.per_class;
    const t0 = performance.now();
    const res = await generateSyntheticCatsDogs(p.train_dir, { perClass: p.synthetic.per_class, size: p.synthetic.size, seed: p.seed });
    const dt = (performance.now() - t0) / 1000;
    if (dt > 0.5) log(`Generated the built-in cats-vs-dogs set: ${n} images of ${p.synthetic.size}px in ${res.dir} (${dt.toFixed(1)} s)`);
  }
  const data = loadData(p, log, warn);

  if (resumeState) {
    const saved = resumeState.classes.map(classKey).join(','), now = data.classes.map(classKey).join(',');
    if (saved !== now) throw new TrainerError(`--resume: the run in ${outDir} was trained on classes ${resumeState.classes.join(', ')}, the data now has ${data.classes.join(', ')}`);
  }

  // 2. The model (fresh, fine-tuned from `pretrained`, or resumed from last/).
  const id2label = Object.fromEntries(data.classes.map((c, i) => [i, c]));
  const label2id = Object.fromEntries(data.classes.map((c, i) => [c, i]));
  manualSeed(p.seed);
  let model: ViTForImageClassification;
  if (resumeState) {
    model = await ViTForImageClassification.fromPretrained(lastDir, { warn: false });
    if (!p.pretrained) {
      const bad = ARCH_FIELDS.filter((k) => JSON.stringify((model.config as any)[k]) !== JSON.stringify((p.model as any)[k]));
      if (bad.length) {
        model.dispose();
        throw new TrainerError(`--resume: the checkpoint in ${lastDir} has ${bad.map((k) => `model.${k} ${JSON.stringify((model.config as any)[k])}`).join(', ')}; the params ask for ${bad.map((k) => JSON.stringify((p.model as any)[k])).join(', ')}`);
      }
    }
  } else if (p.pretrained) {
    model = await ViTForImageClassification.fromPretrained(p.pretrained, {
      config: { num_labels: data.classes.length, id2label, label2id }, ignoreMismatchedSizes: true,
    });
    const explicitSize = p.sources.image_size !== 'default' || p.sources.model !== 'default';
    if (explicitSize && model.config.image_size !== p.image_size) {
      model.dispose();
      throw new TrainerError(`image_size ${p.image_size} differs from the pretrained checkpoint's ${JSON.stringify(model.config.image_size)} (${p.pretrained}); leave image_size and model unset to use the checkpoint's`);
    }
  } else {
    const init = { ...p.model, num_labels: data.classes.length, id2label, label2id };
    model = new ViTForImageClassification(new ViTConfig(init as any));
  }
  const imageSize = model.config.imageHW[0];
  const pre: Preprocessing = { imageSize, mean: p.mean, std: p.std, cropPct: p.crop_pct };
  model.train();
  const names = [...model.namedParameters()].map(([n]) => n);
  const optimizer = new AdamW(model.parameters(), { lr: p.lr, weightDecay: p.weight_decay });

  let trainLoader: ImageLoader, valLoader: ImageLoader;
  try {
    trainLoader = new ImageLoader({
      items: data.train, classes: data.classes, imageSize, mean: p.mean, std: p.std, batchSize: p.batch_size,
      shuffle: true, seed: p.seed, augment: loaderAugment(p.augment), cacheDir: p.cache_dir, workers: p.workers, onWarning: warn,
    });
    valLoader = new ImageLoader({
      items: data.val, classes: data.classes, imageSize, mean: p.mean, std: p.std, batchSize: p.batch_size,
      shuffle: false, seed: p.seed, augment: false, centerCrop: p.crop_pct, cacheDir: p.cache_dir, workers: p.workers, onWarning: warn,
    });
  } catch (e) {
    optimizer.dispose();
    model.dispose();
    throw new TrainerError((e as Error).message);
  }
  const results = new LaggedResults();
  try {
    await prepareLoader(trainLoader, 'Decoding training images', progress);
    await prepareLoader(valLoader, 'Decoding validation images', progress);
    const skipped = trainLoader.skipped.length + valLoader.skipped.length;
    checkClassCounts(trainLoader, valLoader, warn);

    // 3. Only now is out_dir written to.
    if (opts.overwrite) for (const e of present) rmSync(join(outDir, e), { recursive: true, force: true });
    mkdirSync(outDir, { recursive: true });

    let history: EpochRecord[] = [];
    let best: { epoch: number; val_acc: number } | null = null;
    let startEpoch = 1, skipSteps = 0;
    let partial: PartialEpoch = { loss_sum: 0, correct: 0, seen: 0, seconds: 0 };
    if (resumeState) {
      const st = resumeState;
      optimizer.loadStateDict(await readOptimizerState(lastDir, names, model.parameters().map((t) => t.size)));
      setRngState(st.rng_state);
      history = st.history;
      best = st.best;
      startEpoch = st.epoch + 1;
      skipSteps = st.step_in_epoch;
      if (st.partial) partial = { ...st.partial };
      const now = paramsForState(p) as Record<string, unknown>;
      const changed = Object.keys(st.params).filter((k) => k !== 'file' && JSON.stringify(st.params[k]) !== JSON.stringify(now[k]));
      if (changed.length) log(`Resuming with changed parameters: ${changed.map((k) => `${k} ${JSON.stringify(st.params[k])} -> ${JSON.stringify((p as any)[k])}`).join('; ')}`);
      // metrics.jsonl holds exactly the checkpoint's epochs (a crash may have left it short).
      await writeFileAtomic(join(outDir, 'metrics.jsonl'), history.map(metricsLine).join(''));
      log(`Resuming ${outDir} at epoch ${startEpoch}${skipSteps ? `, step ${skipSteps + 1}` : ''} (optimizer step ${optimizer.stepCount})`);
    }

    const stepsPerEpoch = trainLoader.batchesPerEpoch;
    const schedule = {
      lr: p.lr, schedule: p.schedule, totalSteps: p.epochs * stepsPerEpoch,
      warmupSteps: Math.round(Math.min(p.warmup_epochs, p.epochs) * stepsPerEpoch),
    };
    log(`Model: ${describeModel(model.config, model.numParameters(), p.pretrained ? `fine-tuning ${p.pretrained}` : p.model_preset)}`);
    log(`Training: ${p.epochs} epochs of ${stepsPerEpoch} steps (batch ${p.batch_size}), AdamW lr ${p.lr} (${p.schedule}, warm-up ${schedule.warmupSteps} steps), weight decay ${p.weight_decay}, label smoothing ${p.label_smoothing}${skipped ? `; ${skipped} undecodable files skipped` : ''}`);
    log(`Output: ${outDir}`);
    if (startEpoch > p.epochs) {
      log(`Nothing to do: the run in ${outDir} has finished its ${p.epochs} epochs (raise --epochs to train longer).`);
      return { status: 'completed', epochs: startEpoch - 1, globalStep: optimizer.stepCount, history, best, outDir, seconds: 0 };
    }

    const stateNow = (epochsDone: number, stepInEpoch: number, part: PartialEpoch | null, reason: TrainerState['reason']): TrainerState => ({
      format: STATE_FORMAT, epoch: epochsDone, step_in_epoch: stepInEpoch, partial: part,
      global_step: optimizer.stepCount, lr: optimizer.lr, rng_state: getRngState(), classes: data.classes,
      best, history, params: paramsForState(p), saved_at: new Date().toISOString(), reason,
    });
    const save = (state: TrainerState, dir = lastDir) =>
      writeCheckpoint(dir, { model, optimizer: dir === lastDir ? optimizer : null, paramNames: names, state, preprocessing: pre });
    const diverged = (epoch: number, step: number) => {
      const kept = existsSync(lastDir) ? `The last good checkpoint, ${lastDir}, is unchanged` : 'No checkpoint had been saved yet';
      warn(`Epoch ${epoch}, step ${step}: the loss is not finite (NaN or Inf); stopping. ${kept}. Try a lower lr (now ${p.lr}) or more warm-up.`);
    };
    const result = (status: TrainStatus, epochs: number): TrainResult => ({
      status, epochs, globalStep: optimizer.stepCount, history, best, outDir, seconds: (performance.now() - started) / 1000,
    });

    if (shouldStop()) return result('interrupted', startEpoch - 1);

    for (let epoch = startEpoch; epoch <= p.epochs; epoch++) {
      const epochStart = performance.now() - partial.seconds * 1000;
      const bar = progress ? new ProgressBar({ total: stepsPerEpoch, label: `EPOCH ${epoch}`, stream: progress }) : null;
      if (skipSteps) bar?.tick(Math.min(skipSteps, stepsPerEpoch));
      let step = 0, stopped = false, bad = false;
      const account = (s: StepStats | null, atStep: number) => {
        if (!s) return;
        if (!s.finite) {
          bad = true;
          bar?.done();
          diverged(epoch, atStep);
          return;
        }
        partial.loss_sum += s.lossSum;
        partial.correct += s.correct;
        partial.seen += s.seen;
        bar?.tick(1, { loss: partial.loss_sum / partial.seen, acc: partial.correct / partial.seen });
      };

      // Train.
      model.train();
      if (skipSteps < stepsPerEpoch) {
        for await (const batch of trainLoader.batches(epoch)) {
          if (step < skipSteps) {
            step++;
            continue;
          }
          optimizer.lr = learningRate(optimizer.stepCount, schedule);
          results.begin();
          const out = trainStep(model, optimizer, batch, imageSize, p.label_smoothing);
          step++;
          opts.onStep?.({ epoch, stepInEpoch: step, globalStep: optimizer.stepCount });
          account(await results.settle(out), step - 1);
          if (bad) break;
          if (shouldStop()) {
            stopped = true;
            break;
          }
        }
      } else {
        step = skipSteps;
      }
      if (!bad) account(await results.settle(null), step);
      if (bad) {
        results.dispose();
        return result('diverged', epoch - 1);
      }
      skipSteps = 0;
      if (stopped) {
        bar?.done();
        partial.seconds = (performance.now() - epochStart) / 1000;
        await save(stateNow(epoch - 1, step, partial, 'interrupt'));
        log(`Interrupted: saved ${lastDir} at epoch ${epoch}, step ${step} of ${stepsPerEpoch}. Continue with --resume.`);
        return result('interrupted', epoch - 1);
      }

      // Validate (every eval_every epochs and after the last).
      let valLoss: number | null = null, valAcc: number | null = null;
      if (epoch % p.eval_every === 0 || epoch === p.epochs) {
        const v = await evaluate(model, valLoader, results, p.label_smoothing, shouldStop);
        if (v === 'stopped') {
          bar?.done();
          partial.seconds = (performance.now() - epochStart) / 1000;
          await save(stateNow(epoch - 1, stepsPerEpoch, partial, 'interrupt'));
          log(`Interrupted during validation: saved ${lastDir} after the training steps of epoch ${epoch}. Continue with --resume.`);
          return result('interrupted', epoch - 1);
        }
        if (v === 'diverged') {
          bar?.done();
          diverged(epoch, stepsPerEpoch);
          return result('diverged', epoch - 1);
        }
        [valLoss, valAcc] = v;
      }
      bar?.done();

      const record: EpochRecord = {
        epoch, loss: partial.loss_sum / partial.seen, acc: partial.correct / partial.seen,
        val_loss: valLoss, val_acc: valAcc, lr: optimizer.lr, step: optimizer.stepCount,
        seconds: Math.round((performance.now() - epochStart) / 10) / 100,
      };
      partial = { loss_sum: 0, correct: 0, seen: 0, seconds: 0 };
      log(formatEpochLine({ ...record, val_loss: valLoss ?? NaN, val_acc: valAcc ?? NaN }));
      history = [...history, record];
      const improved = valAcc !== null && (best === null || valAcc > best.val_acc);
      if (improved) best = { epoch, val_acc: valAcc! };

      // Checkpoints: best/ first, so last/ never names a best that is not on disk.
      const state = stateNow(epoch, 0, null, 'epoch');
      if (improved) await save(state, bestDir);
      await save(state);
      appendFileSync(join(outDir, METRICS_FILE), metricsLine(record));
      await writeFileAtomic(join(outDir, PLOT_FILE), renderTrainingPlot(plotHistory(state.history)));
      if (shouldStop() && epoch < p.epochs) {
        log(`Interrupted: saved ${lastDir} after epoch ${epoch}. Continue with --resume.`);
        return result('interrupted', epoch);
      }
    }
    const r = result('completed', p.epochs);
    log(`Done: ${p.epochs} epochs in ${formatDuration(r.seconds)}; ${best ? `best val_acc ${fmt(best.val_acc)} at epoch ${best.epoch} (${bestDir})` : 'no validation'}; last checkpoint ${lastDir}`);
    return r;
  } finally {
    results.dispose();
    await trainLoader.close();
    await valLoader.close();
    optimizer.dispose();
    model.dispose();
  }
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
