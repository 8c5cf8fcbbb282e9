// Training checkpoints: an HF model folder (config.json + model.safetensors, via savePretrained)
// plus what the trainer needs to continue — the AdamW moments (optimizer.safetensors, torch's
// exp_avg / exp_avg_sq names per parameter), trainer_state.json (epoch, step, RNG, history, best)
// and preprocessor_config.json (HF ViTImageProcessor: size, mean, std) for predict and eval.
//
// A checkpoint folder is replaced as a whole, and a crash at any point leaves a complete one, the old
// or the new: the new one is written into a hidden temp folder next to it (config.json last: from then
// on it is complete), the old one is renamed aside, the new one renamed into place, and the old one
// removed. Linux cannot rename a folder over a non-empty one, so there is a moment without `last/`;
// every reader (fromPretrained through readCheckpointDir, predict and eval, --resume) then takes the
// complete folder beside it (io/files-node.ts findCheckpointDir), and recoverCheckpointDir() puts it
// in place before the trainer writes again. (A `last` symlink swapped by rename(2) was the other way;
// it was not taken because `cp -r run/last` or `tar` of it would copy a dangling link, and not every
// file system a checkpoint is copied to has symlinks.)
import { existsSync, readFileSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { ViTForImageClassification } from '../vit/modeling.ts';
import type { AdamW, AdamWState } from '../optim/adamw.ts';
import { parseSafetensors, serializeSafetensors, type TensorToWrite } from '../io/safetensors.ts';
import { CONFIG_FILE, findCheckpointDir, readFileBytes, replacementDir } from '../io/files-node.ts';
import { parsePreprocessing, preprocessorConfig, type Preprocessing } from './prediction.ts';

export { parsePreprocessing, preprocessorConfig, type Preprocessing } from './prediction.ts';

/** The trainer's checkpoints in out_dir: the latest (every epoch) and the best (by val_acc). */
export const LAST_DIR = 'last';
export const BEST_DIR = 'best';
export const TRAINER_STATE_FILE = 'trainer_state.json';
export const OPTIMIZER_FILE = 'optimizer.safetensors';
export const PREPROCESSOR_FILE = 'preprocessor_config.json';
export const STATE_FORMAT = 'vitcatsvdogs-trainer/1';

/** Class names compared loosely, so "cats" (folders), "cat" (Kaggle names) and "Cat" (PetImages) meet. */
export function classKey(name: string): string {
  return name.toLowerCase().replace(/s$/, '');
}

/** One epoch's numbers, as metrics.jsonl stores them (null: not measured that epoch). */
export interface EpochRecord {
  epoch: number;
  loss: number;
  acc: number;
  val_loss: number | null;
  val_acc: number | null;
  lr: number;
  step: number;
  seconds: number;
}

/** Train loss/accuracy accumulated over the batches done so far in an epoch. */
export interface PartialEpoch {
  loss_sum: number;
  correct: number;
  seen: number;
  seconds: number;
}

export interface TrainerState {
  format: typeof STATE_FORMAT;
  /** epochs completed */
  epoch: number;
  /** batches done in epoch `epoch + 1` (a checkpoint saved by Ctrl-C mid-epoch), else 0 */
  step_in_epoch: number;
  /** training images done in epoch `epoch + 1`: where --resume continues, whatever its batch_size
   *  (absent in older checkpoints: step_in_epoch batches of params.batch_size) */
  images_in_epoch?: number;
  partial: PartialEpoch | null;
  /** optimizer steps taken */
  global_step: number;
  lr: number;
  /** the library's RNG (dropout, initialisation); the data order and augmentation derive from (seed, epoch) */
  rng_state: string;
  classes: string[];
  best: { epoch: number; val_acc: number } | null;
  history: EpochRecord[];
  /** the resolved parameters the run was started with (for checks on --resume) */
  params: Record<string, unknown>;
  saved_at: string;
  /** why this checkpoint was written */
  reason: 'epoch' | 'interrupt';
}

/** The preprocessing of a checkpoint folder; null when it has no preprocessor_config.json. */
export function readPreprocessing(dir: string): Preprocessing | null {
  const path = join(dir, PREPROCESSOR_FILE);
  if (!existsSync(path)) return null;
  return parsePreprocessing(JSON.parse(readFileSync(path, 'utf8')));
}

/** The optimizer's moments as safetensors, named after the parameters. */
export function optimizerTensors(state: AdamWState, names: readonly string[], shapes: readonly (readonly number[])[]): Map<string, TensorToWrite> {
  const out = new Map<string, TensorToWrite>();
  names.forEach((name, i) => {
    if (state.m[i].length === 0) return; // no step taken for this parameter yet
    out.set(`exp_avg.${name}`, { dtype: 'F32', shape: shapes[i], data: state.m[i] });
    out.set(`exp_avg_sq.${name}`, { dtype: 'F32', shape: shapes[i], data: state.v[i] });
  });
  return out;
}

/** Optimizer hyper-parameters and per-parameter step counts, kept in the safetensors metadata. */
function optimizerMetadata(state: AdamWState): Record<string, string> {
  return {
    format: 'pt',
    optimizer: 'AdamW',
    step: String(state.step),
    lr: String(state.lr),
    betas: JSON.stringify(state.betas),
    eps: String(state.eps),
    weight_decay: String(state.weightDecay),
    param_steps: JSON.stringify(state.paramSteps ?? []),
  };
}

/** Reads optimizer.safetensors back into an AdamWState for the given parameters (by name). */
export async function readOptimizerState(dir: string, names: readonly string[], sizes: readonly number[]): Promise<AdamWState> {
  const path = join(dir, OPTIMIZER_FILE);
  const { tensors, metadata } = parseSafetensors(await readFileBytes(path), path);
  const m: Float32Array[] = [], v: Float32Array[] = [];
  names.forEach((name, i) => {
    const a = tensors.get(`exp_avg.${name}`), b = tensors.get(`exp_avg_sq.${name}`);
    if (!a || !b) {
      m.push(new Float32Array(0));
      v.push(new Float32Array(0));
      return;
    }
    if (a.data.length !== sizes[i] || b.data.length !== sizes[i] || !(a.data instanceof Float32Array) || !(b.data instanceof Float32Array)) {
      throw new Error(`${path}: the moments of "${name}" do not match the model (${a.data.length} values for ${sizes[i]})`);
    }
    m.push(a.data);
    v.push(b.data);
  });
  const unknown = [...tensors.keys()].filter((k) => !names.includes(k.replace(/^exp_avg(_sq)?\./, '')));
  if (unknown.length) throw new Error(`${path}: moments for parameters the model does not have: ${unknown.slice(0, 3).join(', ')}`);
  const paramSteps = JSON.parse(metadata.param_steps ?? '[]') as number[];
  return {
    step: Number(metadata.step),
    lr: Number(metadata.lr),
    betas: JSON.parse(metadata.betas) as [number, number],
    eps: Number(metadata.eps),
    weightDecay: Number(metadata.weight_decay),
    m, v,
    paramSteps: paramSteps.length === names.length ? paramSteps : undefined,
  };
}

export function readTrainerState(dir: string): TrainerState {
  const path = join(dir, TRAINER_STATE_FILE);
  let state: TrainerState;
  try {
    state = JSON.parse(readFileSync(path, 'utf8')) as TrainerState;
  } catch (e) {
    throw new Error(`cannot read the trainer state ${path}: ${(e as Error).message}`);
  }
  if (state?.format !== STATE_FORMAT) throw new Error(`${path} is not a trainer state (format ${JSON.stringify(state?.format)}, expected "${STATE_FORMAT}")`);
  return state;
}

/**
 * Finishes or undoes a replacement of `dir` a crash interrupted (the folder findCheckpointDir reads
 * is renamed into place) and removes the hidden leftovers. Returns whether `dir` exists afterwards.
 */
export function recoverCheckpointDir(dir: string): boolean {
  const parent = dirname(dir), name = basename(dir);
  if (!existsSync(parent)) return false;
  const found = findCheckpointDir(dir);
  if (found !== dir) renameSync(found, dir);
  for (const f of readdirSync(parent)) if (f.startsWith(`.${name}.`)) rmSync(join(parent, f), { recursive: true, force: true });
  return existsSync(dir);
}

/** Writes a checkpoint folder through `fill` (config.json last) into a temp folder, then swaps it in for `dir`. */
export async function replaceDir(dir: string, fill: (tmp: string) => Promise<void>): Promise<void> {
  const tmp = replacementDir(dir, 'tmp');
  await mkdir(dirname(dir), { recursive: true });
  try {
    await fill(tmp);
    if (!existsSync(join(tmp, CONFIG_FILE))) throw new Error(`replaceDir(${dir}): the new folder has no ${CONFIG_FILE}`);
  } catch (e) {
    await rm(tmp, { recursive: true, force: true }).catch(() => {});
    throw e;
  }
  let old: string | null = null;
  if (existsSync(dir)) {
    old = replacementDir(dir, 'old');
    await rename(dir, old);
  }
  await rename(tmp, dir);
  if (old) {
    // config.json first: a folder half removed must never look complete to findCheckpointDir
    await rm(join(old, CONFIG_FILE), { force: true });
    await rm(old, { recursive: true, force: true });
  }
}

export interface CheckpointContents {
  model: ViTForImageClassification;
  /** with its moments; null for a model-only checkpoint (best/) */
  optimizer: AdamW | null;
  paramNames: readonly string[];
  state: TrainerState;
  preprocessing: Preprocessing;
}

/** Writes (replaces) one checkpoint folder; a crash leaves the old or the new one (see the top). */
export async function writeCheckpoint(dir: string, c: CheckpointContents): Promise<void> {
  const extra: Record<string, Uint8Array | string> = {
    [PREPROCESSOR_FILE]: JSON.stringify(preprocessorConfig(c.preprocessing), null, 2) + '\n',
  };
  if (c.optimizer) {
    const st = await c.optimizer.stateDict();
    const shapes = c.optimizer.params.map((p) => p.shape);
    extra[OPTIMIZER_FILE] = serializeSafetensors(optimizerTensors(st, c.paramNames, shapes), optimizerMetadata(st));
  }
  extra[TRAINER_STATE_FILE] = JSON.stringify(c.state, null, 1) + '\n';
  await replaceDir(dir, (tmp) => c.model.savePretrained(tmp, extra));
}
