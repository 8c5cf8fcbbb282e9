// The trainer's parameters: built-in defaults, then a params.json, then command-line flags. Every value
// is checked; every problem names the field, where it came from (the file or "command line") and what
// was expected, and all problems are reported at once.
//
// Paths in params.json are relative to the file's folder; paths on the command line and the defaults
// are relative to the working directory. Flags: `--epochs 3`, `--lr=1e-3`, `--batch-size 16` (kebab or
// snake case), `--flip` / `--no-flip` / `--flip false`, `--mean 0.5,0.5,0.5` (or JSON), `--model vit-ti-64`,
// `--model '{"hidden_size":64}'` (merged over the current model), `--model.hidden_size 64`,
// `--augment.crop_scale 0.5,1`, `--synthetic` / `--no-synthetic` / `--synthetic.per_class 100`,
// `--params other.json` (the file to read instead of opts.file).
import { existsSync, readFileSync, statSync } from 'node:fs';
import { availableParallelism, homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';

// Model presets: src/train/presets.ts (platform-neutral, for the browser demo too)
import { describePresets, modelPreset, MODEL_PRESET_NAMES, type ModelConfig } from './presets.ts';
export { describePresets, modelPreset, MODEL_PRESET_NAMES, type ModelConfig };

// ---------------------------------------------------------------------------------------------------
// The parameters

export interface AugmentParams {
  random_resized_crop: boolean;
  /** [min, max] fraction of the image area kept by the random resized crop */
  crop_scale: [number, number];
  flip: boolean;
  /** brightness/contrast/saturation jitter strength, 0 = off */
  color_jitter: number;
}

export interface SyntheticParams {
  /** images generated per class */
  per_class: number;
  /** side of the generated images in pixels */
  size: number;
}

export interface TrainParams {
  train_dir: string;
  /** a separate validation folder; when set, val_split is 0 */
  val_dir: string | null;
  /** fraction of train_dir held out for validation (stratified, seeded) */
  val_split: number;
  /** the side the images are resized to; always equal to model.image_size */
  image_size: number;
  model: ModelConfig;
  /** the preset the model started from, null when none */
  model_preset: string | null;
  epochs: number;
  lr: number;
  mean: [number, number, number];
  std: [number, number, number];
  batch_size: number;
  seed: number;
  weight_decay: number;
  warmup_epochs: number;
  schedule: 'cosine' | 'constant';
  label_smoothing: number;
  augment: AugmentParams;
  /** fraction of the image side kept by a centred crop before resizing, for validation, eval and
   *  predict (1: the whole image); "auto" in params.json resolves to meanCropSide(augment) */
  crop_pct: number;
  out_dir: string;
  /** an HF checkpoint folder (config.json + model.safetensors) to fine-tune */
  pretrained: string | null;
  /** decode threads; 0 decodes on the main thread */
  workers: number;
  /** folder of resized-image caches; null disables the cache */
  cache_dir: string | null;
  /** validate every this many epochs (and always after the last) */
  eval_every: number;
  /** generate the built-in cats-vs-dogs set into train_dir (when it is not there yet) */
  synthetic: SyntheticParams | null;
  /** fetch the Microsoft PetImages archive into train_dir */
  download: boolean;
  /** continue the run saved in out_dir */
  resume: boolean;
  /** the params file read (absolute), null when none */
  file: string | null;
  /** where each top-level field's value came from: "default", the params file, or "command line" */
  sources: Record<string, string>;
}

export interface ParamsProblem {
  /** the field, dotted for nested ones ("augment.flip", "model.hidden_size") */
  field: string;
  /** the params file as given, or "command line" */
  source: string;
  /** the whole line: source, field, what was expected and what was found */
  message: string;
}

export class ParamsError extends Error {
  constructor(readonly problems: ParamsProblem[]) {
    super(problems.length === 1
      ? problems[0].message
      : `${problems.length} problems with the parameters:\n${problems.map((p) => `  - ${p.message}`).join('\n')}`);
    this.name = 'ParamsError';
  }
}

export const COMMAND_LINE = 'command line';
const DEFAULT = 'default';

// ---------------------------------------------------------------------------------------------------
// Field specs: how a value is checked, and how a command-line string becomes a value

/** A check failed; the message says what was expected ("a number > 0"). */
class Expected extends Error {}

/** 'number'/'list' parse numbers from the command line; 'toggle' takes an optional value (bare = true). */
type Kind = 'number' | 'bool' | 'string' | 'path' | 'list' | 'json' | 'toggle';

interface Spec {
  kind: Kind;
  doc: string;
  check: (v: unknown) => unknown;
  nullable?: boolean;
}

interface Range { int?: boolean; min?: number; gt?: number; max?: number; lt?: number }

function rangeText(r: Range): string {
  const lo = r.gt !== undefined ? `(${r.gt}` : r.min !== undefined ? `[${r.min}` : null;
  const hi = r.lt !== undefined ? `${r.lt})` : r.max !== undefined ? `${r.max}]` : null;
  if (lo && hi) return ` in ${lo}, ${hi}`;
  if (lo) return r.gt !== undefined ? ` > ${r.gt}` : ` >= ${r.min}`;
  if (hi) return r.lt !== undefined ? ` < ${r.lt}` : ` <= ${r.max}`;
  return '';
}

function inRange(v: unknown, r: Range): v is number {
  return typeof v === 'number' && Number.isFinite(v) && (!r.int || Number.isSafeInteger(v)) &&
    (r.min === undefined || v >= r.min) && (r.gt === undefined || v > r.gt) &&
    (r.max === undefined || v <= r.max) && (r.lt === undefined || v < r.lt);
}

function num(r: Range = {}): (v: unknown) => number {
  const expected = (r.int ? 'an integer' : 'a number') + rangeText(r);
  return (v) => {
    if (!inRange(v, r)) throw new Expected(expected);
    return v;
  };
}

function bool(v: unknown): boolean {
  if (typeof v !== 'boolean') throw new Expected('true or false');
  return v;
}

function oneOf<T extends string>(...options: T[]): (v: unknown) => T {
  return (v) => {
    if (typeof v !== 'string' || !options.includes(v as T)) throw new Expected(`one of ${options.map((o) => `"${o}"`).join(', ')}`);
    return v as T;
  };
}

function text(v: unknown): string {
  if (typeof v !== 'string' || v === '') throw new Expected('a non-empty string');
  return v;
}

function triple(r: Range): (v: unknown) => [number, number, number] {
  const range = rangeText(r);
  const expected = `3 numbers (R, G, B)${range ? `, each${range}` : ''}`;
  return (v) => {
    if (!Array.isArray(v) || v.length !== 3 || !v.every((x) => inRange(x, r))) throw new Expected(expected);
    return [v[0], v[1], v[2]];
  };
}

/** An int, or a square [n, n] pair as HF accepts for image_size / patch_size. */
function squareSize(v: unknown): number {
  if (inRange(v, { int: true, min: 1 })) return v;
  if (Array.isArray(v) && v.length === 2 && v[0] === v[1] && inRange(v[0], { int: true, min: 1 })) return v[0];
  throw new Expected('a positive integer (or a square [n, n] pair: the loader makes square images)');
}

const FIELDS: Record<string, Spec> = {
  train_dir: { kind: 'path', check: text, doc: 'training images: one folder per class, Kaggle flat (cat.1.jpg) or PetImages/{Cat,Dog}' },
  val_dir: { kind: 'path', nullable: true, check: text, doc: 'validation images (same layouts); when set, val_split is not used' },
  val_split: { kind: 'number', check: num({ min: 0, lt: 1 }), doc: 'fraction of train_dir held out for validation, stratified and seeded' },
  image_size: { kind: 'number', nullable: true, check: num({ int: true, min: 1 }), doc: 'image side in pixels; sets model.image_size' },
  model: { kind: 'json', check: (v) => v, doc: `a preset name, or an object of HF ViTConfig fields (with an optional "preset" to start from)` },
  epochs: { kind: 'number', check: num({ int: true, min: 1 }), doc: 'training epochs' },
  lr: { kind: 'number', check: num({ gt: 0 }), doc: 'peak learning rate (AdamW)' },
  mean: { kind: 'list', check: triple({}), doc: 'per-channel mean subtracted after scaling pixels to [0, 1]' },
  std: { kind: 'list', check: triple({ gt: 0 }), doc: 'per-channel std divided by after subtracting the mean' },
  batch_size: { kind: 'number', check: num({ int: true, min: 1 }), doc: 'images per step' },
  seed: { kind: 'number', check: num({ int: true, min: 0, max: 2 ** 32 - 1 }), doc: 'seed of the split, the initialisation, the shuffling and the augmentation' },
  weight_decay: { kind: 'number', check: num({ min: 0 }), doc: 'AdamW decoupled weight decay' },
  warmup_epochs: { kind: 'number', check: num({ min: 0 }), doc: 'linear warm-up length in epochs (may be fractional; capped at epochs)' },
  schedule: { kind: 'string', check: oneOf('cosine', 'constant'), doc: 'learning-rate schedule after the warm-up' },
  label_smoothing: { kind: 'number', check: num({ min: 0, lt: 1 }), doc: 'cross-entropy label smoothing' },
  augment: { kind: 'toggle', check: (v) => v, doc: 'training augmentation: {random_resized_crop, crop_scale, flip, color_jitter}; false turns all off' },
  crop_pct: {
    kind: 'number', doc: 'validation/eval/predict: keep this centred fraction of the image side before resizing; "auto": the mean side of the training crops',
    check: (v) => {
      if (v === 'auto' || inRange(v, { gt: 0, max: 1 })) return v;
      throw new Expected('a number with 0 < crop_pct <= 1, or "auto"');
    },
  },
  out_dir: { kind: 'path', check: text, doc: 'where checkpoints, metrics.jsonl and the plot go' },
  pretrained: { kind: 'path', nullable: true, check: text, doc: 'an HF checkpoint folder (config.json + model.safetensors) to fine-tune' },
  workers: { kind: 'number', check: num({ int: true, min: 0, max: 256 }), doc: 'decode threads (0: decode on the main thread)' },
  cache_dir: { kind: 'path', nullable: true, check: text, doc: 'cache of resized images (null: no cache)' },
  eval_every: { kind: 'number', check: num({ int: true, min: 1 }), doc: 'validate every N epochs (and after the last)' },
  synthetic: { kind: 'toggle', nullable: true, check: (v) => v, doc: 'generate the built-in cats-vs-dogs set into train_dir: {per_class, size}; true for the defaults' },
  download: { kind: 'bool', check: bool, doc: 'download and extract Microsoft\'s PetImages archive into train_dir' },
  resume: { kind: 'bool', check: bool, doc: 'continue the run saved in out_dir' },
};

const AUGMENT_FIELDS: Record<string, Spec> = {
  random_resized_crop: { kind: 'bool', check: bool, doc: 'random resized crop' },
  crop_scale: {
    kind: 'list', doc: '[min, max] area fraction of the crop',
    check: (v) => {
      if (!Array.isArray(v) || v.length !== 2 || !v.every((x) => inRange(x, { gt: 0, max: 1 })) || v[0] > v[1]) {
        throw new Expected('[min, max] with 0 < min <= max <= 1');
      }
      return [v[0], v[1]];
    },
  },
  flip: { kind: 'bool', check: bool, doc: 'random horizontal flip' },
  color_jitter: { kind: 'number', check: num({ min: 0, max: 1 }), doc: 'colour jitter strength (0: off)' },
};

const SYNTHETIC_FIELDS: Record<string, Spec> = {
  per_class: { kind: 'number', check: num({ int: true, min: 1 }), doc: 'images per class' },
  size: { kind: 'number', check: num({ int: true, min: 16, max: 1024 }), doc: 'image side in pixels' },
};

const prob = num({ min: 0, lt: 1 });
const MODEL_FIELDS: Record<string, Spec> = {
  image_size: { kind: 'json', check: squareSize, doc: '' },
  patch_size: { kind: 'json', check: squareSize, doc: '' },
  num_channels: {
    kind: 'number', doc: '',
    check: (v) => { if (v !== 3) throw new Expected('3 (the loader makes RGB images)'); return v; },
  },
  hidden_size: { kind: 'number', check: num({ int: true, min: 1 }), doc: '' },
  num_hidden_layers: { kind: 'number', check: num({ int: true, min: 1 }), doc: '' },
  num_attention_heads: { kind: 'number', check: num({ int: true, min: 1 }), doc: '' },
  intermediate_size: { kind: 'number', check: num({ int: true, min: 1 }), doc: '' },
  hidden_act: { kind: 'string', check: oneOf('gelu'), doc: '' },
  hidden_dropout_prob: { kind: 'number', check: prob, doc: '' },
  attention_probs_dropout_prob: { kind: 'number', check: prob, doc: '' },
  initializer_range: { kind: 'number', check: num({ min: 0 }), doc: '' },
  layer_norm_eps: { kind: 'number', check: num({ gt: 0 }), doc: '' },
  qkv_bias: { kind: 'bool', check: bool, doc: '' },
  encoder_stride: { kind: 'number', check: num({ int: true, min: 1 }), doc: '' },
};

/** config.json keys kept as they are (HF PretrainedConfig bookkeeping); keys starting with "_" too. */
const MODEL_PASSTHROUGH = new Set([
  'architectures', 'model_type', 'transformers_version', 'torch_dtype', 'dtype', 'id2label', 'label2id',
  'num_labels', 'problem_type', 'pooler_output_size', 'pooler_act', 'return_dict', 'output_hidden_states',
  'output_attentions', 'torchscript', 'use_bfloat16', 'tie_word_embeddings', 'is_encoder_decoder', 'is_decoder',
  'add_cross_attention', 'chunk_size_feed_forward', 'pruned_heads', 'finetuning_task', 'tokenizer_class',
  'prefix', 'bos_token_id', 'pad_token_id', 'eos_token_id', 'sep_token_id', 'decoder_start_token_id',
  'task_specific_params', 'use_mask_token',
]);

/** Common other spellings, so that the suggestion finds what was meant. */
const ALIASES: Record<string, string> = {
  learning_rate: 'lr', bs: 'batch_size', batch: 'batch_size', num_epochs: 'epochs', n_epochs: 'epochs',
  data_dir: 'train_dir', train_path: 'train_dir', val_path: 'val_dir', valid_dir: 'val_dir',
  validation_split: 'val_split', output_dir: 'out_dir', checkpoint: 'pretrained', num_workers: 'workers',
  img_size: 'image_size', wd: 'weight_decay', warmup: 'warmup_epochs', lr_schedule: 'schedule',
  augmentation: 'augment', hflip: 'flip', horizontal_flip: 'flip', jitter: 'color_jitter',
  colour_jitter: 'color_jitter', scale: 'crop_scale', seed_value: 'seed', smoothing: 'label_smoothing',
};

const DEFAULT_AUGMENT: AugmentParams = { random_resized_crop: true, crop_scale: [0.6, 1], flip: true, color_jitter: 0.1 };
const NO_AUGMENT: AugmentParams = { random_resized_crop: false, crop_scale: [1, 1], flip: false, color_jitter: 0 };
const DEFAULT_SYNTHETIC: SyntheticParams = { per_class: 600, size: 64 };
const DEFAULT_MODEL = 'vit-nano-32';
const SYNTHETIC_TRAIN_DIR = 'data/catsvdogs-synthetic';
const DOWNLOAD_TRAIN_DIR = 'data/PetImages';

/**
 * The mean side (as a fraction of the image side) of the training crops: E[sqrt(area)] for an area
 * fraction uniform in crop_scale, 1 without the random resized crop. A validation crop of this size
 * shows objects at the scale training showed them (0.81 for crop_scale [0.35, 1]).
 */
export function meanCropSide(a: AugmentParams): number {
  if (!a.random_resized_crop) return 1;
  const [lo, hi] = a.crop_scale;
  if (hi - lo < 1e-9) return Math.sqrt(hi);
  return (2 / 3) * (hi ** 1.5 - lo ** 1.5) / (hi - lo);
}

/** Scalar defaults, sized for the built-in demo (paths relative to the working directory). */
function scalarDefaults(): Record<string, unknown> {
  return {
    train_dir: SYNTHETIC_TRAIN_DIR, val_dir: null, val_split: 0.2, image_size: null,
    epochs: 10, lr: 1e-3, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5], batch_size: 32, seed: 0,
    weight_decay: 0.05, warmup_epochs: 1, schedule: 'cosine', label_smoothing: 0.1, crop_pct: 1,
    out_dir: 'runs/catsvdogs', pretrained: null,
    workers: Math.max(1, Math.min(4, availableParallelism() - 1)),
    cache_dir: '.cache/catsvdogs', eval_every: 1, download: false, resume: false,
  };
}

/** The help text: every field, its default and what it means. */
export function paramsHelp(): string {
  const defaults = scalarDefaults();
  const show = (v: unknown) => JSON.stringify(v);
  const lines = ['Parameters (params.json fields; every one is also a flag: --name value, --name=value, kebab-case works):'];
  for (const [name, spec] of Object.entries(FIELDS)) {
    const dflt = name === 'model' ? show(DEFAULT_MODEL) : name === 'augment' ? show(DEFAULT_AUGMENT)
      : name === 'image_size' ? 'the model\'s'
      : name === 'synthetic' ? `${show(DEFAULT_SYNTHETIC)} when train_dir and download are not set, else null` : show(defaults[name]);
    lines.push(`  ${name.padEnd(16)}${spec.doc} (default ${dflt})`);
  }
  lines.push('Augmentation flags: --random-resized-crop, --crop-scale MIN,MAX, --flip / --no-flip, --color-jitter X');
  lines.push('Model presets (--model NAME, or --model \'{"hidden_size": 64}\', or --model.FIELD VALUE):');
  lines.push(describePresets());
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------------------
// Loading

/** One value to set, from the file or the command line. */
interface Assignment {
  path: string[];
  value: unknown;
  source: string;
  /** how the user wrote it (a flag), for messages */
  spelled?: string;
  /** folder that relative paths are resolved against */
  base: string;
}

/** Reads the params file (opts.file, or `--params FILE` in argv) and applies the flags over it. */
export function loadParams(opts: { file?: string; argv: string[]; cwd?: string }): TrainParams {
  const cwd = opts.cwd ?? process.cwd();
  const problems: ParamsProblem[] = [];
  const report = (field: string, source: string, message: string, spelled?: string) => {
    const label = spelled && spelled !== field ? `${field} (${spelled})` : field;
    problems.push({ field, source, message: `${source}: ${label}: ${message}` });
  };

  const { file, assignments: flagAssignments } = parseArgv(opts.argv, cwd, report);
  const fileName = file ?? opts.file ?? null;
  const filePath = fileName === null ? null : resolve(cwd, fileName);
  const fileAssignments = filePath === null ? [] : readParamsFile(fileName!, filePath, report);
  if (fileAssignments === null) throw new ParamsError(problems);

  const draft = new Draft(cwd, report);
  for (const a of [...fileAssignments, ...flagAssignments]) draft.apply(a);
  const params = draft.finish(filePath);
  if (problems.length > 0) throw new ParamsError(problems);
  return params;
}

/** Assignments from the file's top-level object; null when the file cannot be used at all. */
function readParamsFile(name: string, path: string, report: (f: string, s: string, m: string) => void): Assignment[] | null {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    report('params', name, code === 'ENOENT' ? `the params file ${path} does not exist`
      : `cannot read the params file ${path}: ${code ?? (err as Error).message}`);
    return null;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    report('params', name, `not valid JSON: ${(err as Error).message}`);
    return null;
  }
  if (!isPlainObject(json)) {
    report('params', name, `expected a JSON object of parameters, got ${describe(json)}`);
    return null;
  }
  const base = dirname(path);
  const out: Assignment[] = [];
  for (const [key, value] of Object.entries(json)) {
    if (key.startsWith('_') || key.startsWith('//')) continue; // comments
    if (!(key in FIELDS)) {
      report(key, name, unknownMessage('field', key, Object.keys(FIELDS)));
      continue;
    }
    out.push({ path: [key], value, source: name, base });
  }
  return out;
}

const BOOL_WORDS: Record<string, boolean> = { true: true, false: false, yes: true, no: false, on: true, off: false, '1': true, '0': false };

/** Flag names (snake case) the command line understands, for suggestions. */
function knownFlags(): string[] {
  return [
    ...Object.keys(FIELDS), ...Object.keys(AUGMENT_FIELDS), 'params',
    ...Object.keys(AUGMENT_FIELDS).map((k) => `augment.${k}`),
    ...Object.keys(SYNTHETIC_FIELDS).map((k) => `synthetic.${k}`),
    ...Object.keys(MODEL_FIELDS).map((k) => `model.${k}`), 'model.preset',
  ];
}

/** Where a (snake-cased) flag goes and how its value is read; null when unknown. */
function flagTarget(key: string): { path: string[]; kind: Kind; nullable: boolean } | null {
  if (key in FIELDS) return { path: [key], kind: FIELDS[key].kind, nullable: !!FIELDS[key].nullable };
  if (key in AUGMENT_FIELDS) return { path: ['augment', key], kind: AUGMENT_FIELDS[key].kind, nullable: false };
  const dot = key.indexOf('.');
  if (dot <= 0) return null;
  const head = key.slice(0, dot), sub = key.slice(dot + 1);
  if (head === 'augment' && sub in AUGMENT_FIELDS) return { path: [head, sub], kind: AUGMENT_FIELDS[sub].kind, nullable: false };
  if (head === 'synthetic' && sub in SYNTHETIC_FIELDS) return { path: [head, sub], kind: SYNTHETIC_FIELDS[sub].kind, nullable: false };
  // Any model key: unknown ones are reported (with a suggestion) when applied.
  if (head === 'model' && sub !== '') return { path: [head, sub], kind: MODEL_FIELDS[sub]?.kind ?? 'json', nullable: false };
  return null;
}

function parseArgv(argv: string[], cwd: string, report: (f: string, s: string, m: string, spelled?: string) => void) {
  const assignments: Assignment[] = [];
  let file: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const token = argv[i];
    if (!token.startsWith('--') || token === '--') {
      report('argument', COMMAND_LINE, `unexpected argument ${JSON.stringify(token)} (expected --name value flags)`);
      continue;
    }
    const eq = token.indexOf('=');
    const name = eq >= 0 ? token.slice(2, eq) : token.slice(2);
    let inline = eq >= 0 ? token.slice(eq + 1) : undefined;
    const spelled = `--${name}`;
    let key = name.replace(/-/g, '_');
    let negated = false;
    if (!flagTarget(key) && key !== 'params' && key.startsWith('no_') && flagTarget(key.slice(3))) {
      key = key.slice(3);
      negated = true;
    }
    const next = argv[i + 1];
    const nextIsValue = next !== undefined && !next.startsWith('--');
    const takeValue = (): string | undefined => {
      if (inline !== undefined) return inline;
      if (nextIsValue) { i++; return next; }
      return undefined;
    };

    if (key === 'params' || key === 'config') {
      const v = takeValue();
      if (v === undefined || v === '') report('params', COMMAND_LINE, 'expected the path of a params file', spelled);
      else file = v;
      continue;
    }
    const target = flagTarget(key);
    if (!target) {
      const hint = unknownMessage('option', spelled, knownFlags().map((k) => `--${k}`));
      report(key, COMMAND_LINE, hint, spelled);
      if (inline === undefined && nextIsValue) i++; // skip its value too
      continue;
    }
    const field = target.path.join('.');
    let value: unknown;
    if (negated) {
      if (inline !== undefined) {
        report(field, COMMAND_LINE, `${spelled} takes no value`, spelled);
        continue;
      }
      if (target.kind === 'bool' || target.kind === 'toggle') value = false;
      else if (target.nullable) value = null;
      else {
        report(field, COMMAND_LINE, `there is no --no-${key.replace(/_/g, '-')} (${field} cannot be turned off)`, spelled);
        continue;
      }
    } else if (target.kind === 'bool' || target.kind === 'toggle') {
      // A bare switch means true; the next word is its value only when it reads as one.
      if (inline === undefined && nextIsValue && (next.toLowerCase() in BOOL_WORDS || (target.kind === 'toggle' && /^[{[]/.test(next.trim())))) {
        inline = next;
        i++;
      }
      value = inline === undefined ? true : fromArg(inline, target.kind);
    } else {
      const raw = takeValue();
      if (raw === undefined) {
        report(field, COMMAND_LINE, `${spelled} expects a value`, spelled);
        continue;
      }
      value = fromArg(raw, target.kind);
    }
    assignments.push({ path: target.path, value, source: COMMAND_LINE, spelled, base: cwd });
  }
  return { file, assignments };
}

const NUMBER_RE = /^[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$/i;

/** A command-line string as the JSON value it stands for; left a string when it does not read as one. */
function fromArg(raw: string, kind: Kind): unknown {
  const s = raw.trim();
  switch (kind) {
    case 'number':
      return NUMBER_RE.test(s) ? Number(s) : raw;
    case 'bool':
      return s.toLowerCase() in BOOL_WORDS ? BOOL_WORDS[s.toLowerCase()] : raw;
    case 'list':
      if (s.startsWith('[')) return tryJSON(s);
      return s.split(/\s*,\s*/).map((x) => (NUMBER_RE.test(x) ? Number(x) : x));
    case 'json':
    case 'toggle':
      if (s.toLowerCase() in BOOL_WORDS && kind === 'toggle') return BOOL_WORDS[s.toLowerCase()];
      return tryJSON(s);
    default:
      return raw;
  }
}

function tryJSON(s: string): unknown {
  try {
    return JSON.parse(s);
  } catch {
    return s;
  }
}

/** The values as they are being assembled, with where each came from. */
class Draft {
  private readonly values = scalarDefaults();
  private readonly sources: Record<string, string> = {};
  private model: ModelConfig = modelPreset(DEFAULT_MODEL);
  private modelPreset: string | null = DEFAULT_MODEL;
  private augment: AugmentParams = structuredClone(DEFAULT_AUGMENT);
  private synthetic: SyntheticParams | null = null;
  /** the assignment that set each field (for messages about combinations) */
  private readonly setBy: Record<string, Assignment> = {};

  constructor(private readonly cwd: string, private readonly report: (f: string, s: string, m: string, spelled?: string) => void) {}

  /** Runs `fn`, turning a failed check into a problem about `field`. */
  private guard(field: string, a: Assignment, value: unknown, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      if (!(err instanceof Expected)) throw err;
      this.report(field, a.source, `expected ${err.message}, got ${describe(value)}`, a.spelled);
    }
  }

  apply(a: Assignment): void {
    const [key, sub] = a.path;
    this.sources[key] = a.source;
    this.setBy[a.path.join('.')] = a;
    this.setBy[key] = a;
    if (key === 'model') return this.applyModel(a);
    if (key === 'augment') return this.applyAugment(a, sub);
    if (key === 'synthetic') return this.applySynthetic(a, sub);
    const spec = FIELDS[key];
    if (a.value === null && spec.nullable) {
      this.values[key] = null;
      return;
    }
    this.guard(key, a, a.value, () => {
      const v = spec.check(a.value);
      this.values[key] = spec.kind === 'path' ? expandPath(a.base, v as string) : v;
    });
  }

  private applyModel(a: Assignment): void {
    if (a.path.length === 2) return this.setModelField(a.path[1], a.value, a);
    const v = a.value;
    if (typeof v === 'string') return this.usePreset(v, a, 'model');
    if (!isPlainObject(v)) {
      this.report('model', a.source, `expected a preset name (${MODEL_PRESET_NAMES.join(', ')}) or an object of ViTConfig fields, got ${describe(v)}`, a.spelled);
      return;
    }
    // An object is merged over the current model; "preset" first picks the model to start from.
    if ('preset' in v) this.usePreset(v.preset, a, 'model.preset');
    for (const [k, x] of Object.entries(v)) if (k !== 'preset') this.setModelField(k, x, a);
  }

  private usePreset(name: unknown, a: Assignment, field: string): void {
    if (typeof name === 'string' && MODEL_PRESET_NAMES.includes(name)) {
      this.model = modelPreset(name);
      this.modelPreset = name;
      return;
    }
    const known = MODEL_PRESET_NAMES;
    this.report(field, a.source, typeof name === 'string'
      ? unknownMessage('model preset', name, [...known])
      : `expected a preset name (${known.join(', ')}), got ${describe(name)}`, a.spelled);
  }

  private setModelField(key: string, value: unknown, a: Assignment): void {
    const field = `model.${key}`;
    const spec = MODEL_FIELDS[key];
    if (spec) {
      this.guard(field, a, value, () => {
        (this.model as Record<string, unknown>)[key] = spec.check(value);
      });
    } else if (MODEL_PASSTHROUGH.has(key) || key.startsWith('_')) {
      (this.model as Record<string, unknown>)[key] = value;
    } else {
      this.report(field, a.source, unknownMessage('ViTConfig field', key, [...Object.keys(MODEL_FIELDS), 'preset']), a.spelled);
    }
  }

  private applyAugment(a: Assignment, sub: string | undefined): void {
    if (sub !== undefined) return this.setSubField('augment', AUGMENT_FIELDS, this.augment as unknown as Record<string, unknown>, sub, a.value, a);
    const v = a.value;
    if (typeof v === 'boolean') {
      this.augment = structuredClone(v ? DEFAULT_AUGMENT : NO_AUGMENT);
    } else if (isPlainObject(v)) {
      for (const [k, x] of Object.entries(v)) this.setSubField('augment', AUGMENT_FIELDS, this.augment as unknown as Record<string, unknown>, k, x, a);
    } else {
      this.report('augment', a.source, `expected true, false or an object {${Object.keys(AUGMENT_FIELDS).join(', ')}}, got ${describe(v)}`, a.spelled);
    }
  }

  private applySynthetic(a: Assignment, sub: string | undefined): void {
    const v = a.value;
    if (sub === undefined && (v === false || v === null)) {
      this.synthetic = null;
      return;
    }
    this.synthetic ??= { ...DEFAULT_SYNTHETIC };
    const target = this.synthetic as unknown as Record<string, unknown>;
    if (sub !== undefined) return this.setSubField('synthetic', SYNTHETIC_FIELDS, target, sub, v, a);
    if (v === true) return;
    if (isPlainObject(v)) {
      for (const [k, x] of Object.entries(v)) this.setSubField('synthetic', SYNTHETIC_FIELDS, target, k, x, a);
    } else {
      this.report('synthetic', a.source, `expected true, false, null or an object {${Object.keys(SYNTHETIC_FIELDS).join(', ')}}, got ${describe(v)}`, a.spelled);
    }
  }

  private setSubField(parent: string, specs: Record<string, Spec>, target: Record<string, unknown>, key: string, value: unknown, a: Assignment): void {
    const spec = specs[key];
    if (!spec) {
      this.report(`${parent}.${key}`, a.source, unknownMessage(`${parent} field`, key, Object.keys(specs)), a.spelled);
      return;
    }
    this.guard(`${parent}.${key}`, a, value, () => { target[key] = spec.check(value); });
  }

  /** Defaults that depend on other fields, checks across fields and folders (problems go to report). */
  finish(file: string | null): TrainParams {
    const v = this.values;
    const explicit = (field: string) => this.sources[field] !== undefined;
    const sourceOf = (field: string) => this.sources[field] ?? DEFAULT;
    const problem = (field: string, message: string) => this.report(field, sourceOf(field), message, this.setBy[field]?.spelled);

    // Where the data comes from: the built-in set unless a folder or the download is asked for. A
    // --download flag over a params file that generates the built-in set (the shipped demo) replaces
    // that file's data source: no synthetic set, and the default download folder unless a flag names one.
    const fromFile = (field: string) => explicit(field) && this.sources[field] !== COMMAND_LINE;
    if (v.download === true && this.sources.download === COMMAND_LINE && this.synthetic && fromFile('synthetic')) {
      this.synthetic = null;
      if (fromFile('train_dir')) delete this.sources.train_dir;
    }
    if (!explicit('synthetic') && !explicit('train_dir') && v.download !== true) this.synthetic = { ...DEFAULT_SYNTHETIC };
    if (!explicit('train_dir') && v.download === true) v.train_dir = DOWNLOAD_TRAIN_DIR;
    for (const key of ['train_dir', 'out_dir', 'cache_dir'] as const) {
      if (!explicit(key) && typeof v[key] === 'string') v[key] = resolve(this.cwd, v[key] as string);
    }
    if (v.download === true && this.synthetic) {
      problem('download', `"download" and "synthetic" both ask for the training data; choose one (synthetic is set in ${sourceOf('synthetic')})`);
    }

    // image_size (top level) wins over the model's, and must suit the patch size.
    if (v.image_size !== null) this.model.image_size = v.image_size as number;
    const m = this.model;
    if (m.image_size % m.patch_size !== 0) {
      problem(v.image_size !== null ? 'image_size' : 'model', `image size ${m.image_size} is not a multiple of model.patch_size ${m.patch_size}`);
    }
    if (m.hidden_size % m.num_attention_heads !== 0) {
      problem('model', `model.hidden_size ${m.hidden_size} is not a multiple of model.num_attention_heads ${m.num_attention_heads}`);
    }

    // A separate validation folder replaces the split.
    if (v.val_dir !== null) v.val_split = 0;

    this.checkFolder('train_dir', problem, this.synthetic !== null || v.download === true
      ? 'absent-ok' : 'must-exist', 'an existing folder of training images, or "synthetic" to generate one');
    this.checkFolder('val_dir', problem, 'must-exist', 'an existing folder of validation images');
    this.checkFolder('pretrained', problem, 'must-exist', 'an HF checkpoint folder (config.json + model.safetensors)');
    if (typeof v.pretrained === 'string' && isDir(v.pretrained) && !existsSync(join(v.pretrained, 'config.json'))) {
      problem('pretrained', `folder "${v.pretrained}" has no config.json (expected an HF checkpoint folder)`);
    }
    this.checkFolder('out_dir', problem, 'absent-ok', 'a folder (it is created if missing)');
    this.checkFolder('cache_dir', problem, 'absent-ok', 'a folder (it is created if missing)');

    const sources: Record<string, string> = {};
    for (const key of Object.keys(FIELDS)) sources[key] = sourceOf(key);
    return {
      train_dir: v.train_dir as string,
      val_dir: v.val_dir as string | null,
      val_split: v.val_split as number,
      image_size: m.image_size,
      model: m,
      model_preset: this.modelPreset,
      epochs: v.epochs as number,
      lr: v.lr as number,
      mean: v.mean as [number, number, number],
      std: v.std as [number, number, number],
      batch_size: v.batch_size as number,
      seed: v.seed as number,
      weight_decay: v.weight_decay as number,
      warmup_epochs: v.warmup_epochs as number,
      schedule: v.schedule as 'cosine' | 'constant',
      label_smoothing: v.label_smoothing as number,
      augment: this.augment,
      crop_pct: v.crop_pct === 'auto' ? meanCropSide(this.augment) : v.crop_pct as number,
      out_dir: v.out_dir as string,
      pretrained: v.pretrained as string | null,
      workers: v.workers as number,
      cache_dir: v.cache_dir as string | null,
      eval_every: v.eval_every as number,
      synthetic: this.synthetic,
      download: v.download as boolean,
      resume: v.resume as boolean,
      file,
      sources,
    };
  }

  private checkFolder(field: string, problem: (f: string, m: string) => void, mode: 'must-exist' | 'absent-ok', expected: string): void {
    const path = this.values[field];
    if (typeof path !== 'string') return;
    if (!existsSync(path)) {
      if (mode === 'must-exist') problem(field, `folder "${path}" does not exist (expected ${expected})`);
    } else if (!isDir(path)) {
      problem(field, `"${path}" is not a folder (expected ${expected})`);
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// Small helpers

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isDir(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

function expandPath(base: string, p: string): string {
  if (p === '~' || p.startsWith('~/')) return join(homedir(), p.slice(1));
  return resolve(base, p);
}

/** A value as a message shows it: numbers bare, strings quoted, with the type when it is the wrong one. */
function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (typeof v === 'string') return `${JSON.stringify(v)} (a string)`;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  const json = JSON.stringify(v);
  const short = json.length > 60 ? `${json.slice(0, 57)}...` : json;
  return `${short} (${Array.isArray(v) ? `an array of ${v.length}` : 'an object'})`;
}

/** "unknown field "epoch"; did you mean "epochs"?" or the list of known names. */
function unknownMessage(what: string, name: string, known: string[]): string {
  const guess = closest(name, known);
  if (guess) return `unknown ${what} "${name}"; did you mean "${guess}"?`;
  return `unknown ${what} "${name}"; expected one of: ${known.join(', ')}`;
}

function closest(name: string, candidates: string[]): string | null {
  const norm = (s: string) => s.toLowerCase().replace(/^--/, '').replace(/[-_.]/g, '');
  const target = norm(name);
  const alias = ALIASES[name.replace(/^--/, '').replace(/-/g, '_')];
  if (alias) {
    const hit = candidates.find((c) => norm(c) === norm(alias));
    if (hit) return hit;
  }
  let best: string | null = null;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = editDistance(target, norm(c));
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return bestDistance <= Math.max(1, Math.round(target.length / 3)) ? best : null;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = row;
  }
  return prev[b.length];
}
