import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  loadParams, meanCropSide, ParamsError, paramsHelp, COMMAND_LINE, type TrainParams,
} from '../src/train/params.ts';
import { ViTConfig } from '../src/vit/config.ts';
import { modelPreset, MODEL_PRESET_NAMES } from '../src/vit/presets.ts';
import { DEMO_PARAMS } from '../src/train/demo-params.ts';

// A scratch folder with a training folder and a helper to write params files into it.
const root = mkdtempSync(join(tmpdir(), 'train-params-'));
mkdirSync(join(root, 'train', 'cats'), { recursive: true });
mkdirSync(join(root, 'val'), { recursive: true });
mkdirSync(join(root, 'ckpt'), { recursive: true });
writeFileSync(join(root, 'ckpt', 'config.json'), '{}');
writeFileSync(join(root, 'not-a-folder'), 'x');

/** Writes params.json (or `name`) with the original project's fields plus `extra`; returns its path. */
function paramsFile(extra: Record<string, unknown> = {}, name = 'params.json'): string {
  const path = join(root, name);
  writeFileSync(path, JSON.stringify({
    train_dir: 'train', epochs: 10, lr: 0.0001, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], batch_size: 64, ...extra,
  }));
  return path;
}

const load = (argv: string[], file?: string): TrainParams => loadParams({ file, argv, cwd: root });

/** The ParamsError that loading throws; fails when it loads. */
function problemsOf(argv: string[], file?: string): ParamsError {
  try {
    load(argv, file);
  } catch (e) {
    if (e instanceof ParamsError) return e;
    throw e;
  }
  throw new Error(`expected a ParamsError for ${JSON.stringify(argv)}`);
}

function expectProblem(argv: string[], file: string | undefined, field: string, pattern: RegExp): void {
  const err = problemsOf(argv, file);
  const hit = err.problems.find((p) => p.field === field);
  assert.ok(hit, `no problem about "${field}" in:\n${err.message}`);
  assert.match(hit!.message, pattern);
}

test('defaults: sized for the built-in demo, a valid ViT config; the data must be named', () => {
  const p = load(['--train-dir', 'train']);
  assert.is(p.synthetic, null);
  assert.equal(p.val_split, 0.2);
  assert.is(p.val_dir, null);
  assert.is(p.model_preset, 'vit-nano-32');
  assert.is(p.image_size, p.model.image_size);
  assert.is(p.schedule, 'cosine');
  assert.equal(p.mean.length, 3);
  assert.equal(Object.entries(p.sources).filter(([, s]) => s !== 'default'), [['train_dir', COMMAND_LINE]]);
  assert.is(p.file, null);
  new ViTConfig(p.model); // the trainer's model accepts it
  // No train_dir, no synthetic block, no download: an error, not 1,200 generated images in ./data.
  expectProblem([], undefined, 'train_dir', /^default: train_dir: not set \(expected .*folder of training images.*"synthetic".*download/);
  writeFileSync(join(root, 'no-data.json'), JSON.stringify({ epochs: 3, lr: 0.001 }));
  expectProblem([], join(root, 'no-data.json'), 'train_dir', /train_dir: not set/);
  // The built-in set only when asked for: by the shipped demo file, or --synthetic (into ./data/ then).
  const demo = loadParams({ file: DEMO_PARAMS, argv: [], cwd: root });
  assert.ok(demo.synthetic && demo.synthetic.per_class > 0 && demo.synthetic.size >= 16);
  assert.equal(demo.train_dir, join(root, '.cache', 'synthetic-catsvdogs'));
  const asked = load(['--synthetic']);
  assert.equal(asked.train_dir, join(root, 'data/catsvdogs-synthetic'));
  assert.ok(asked.synthetic && asked.synthetic.per_class > 0);
});

test('presets: one table of HF config fields, each a valid ViTConfig', () => {
  assert.ok(MODEL_PRESET_NAMES.includes('vit-micro-32') && MODEL_PRESET_NAMES.includes('vit-ti-64'));
  assert.equal(
    { ...modelPreset('vit-micro-32') },
    {
      image_size: 32, patch_size: 4, num_channels: 3, hidden_size: 128, num_hidden_layers: 6, num_attention_heads: 4,
      intermediate_size: 256, hidden_act: 'gelu', hidden_dropout_prob: 0, attention_probs_dropout_prob: 0,
      initializer_range: 0.02, layer_norm_eps: 1e-12, qkv_bias: true,
    },
  );
  const ti64 = modelPreset('vit-ti-64');
  assert.equal([ti64.image_size, ti64.patch_size, ti64.hidden_size, ti64.num_hidden_layers, ti64.num_attention_heads, ti64.intermediate_size], [64, 8, 192, 12, 3, 768]);
  const b = modelPreset('vit-b-224');
  assert.equal([b.image_size, b.patch_size, b.hidden_size, b.num_attention_heads, b.intermediate_size], [224, 16, 768, 12, 3072]);
  for (const name of MODEL_PRESET_NAMES) new ViTConfig(modelPreset(name), name);
  assert.throws(() => modelPreset('vit-huge'), /known presets: vit-nano-32/);
});

test('params.json, then flags: kebab and snake case, =, booleans, arrays, JSON model', () => {
  const file = paramsFile({ model: 'vit-micro-32' });
  const p = load(['--epochs', '3', '--lr=1e-3', '--batch-size', '16', '--no-flip', '--mean', '0.5,0.5,0.5',
    '--model', '{"hidden_size":64}'], file);
  assert.is(p.epochs, 3);
  assert.is(p.lr, 1e-3);
  assert.is(p.batch_size, 16);
  assert.is(p.augment.flip, false);
  assert.is(p.augment.random_resized_crop, true);
  assert.equal(p.mean, [0.5, 0.5, 0.5]);
  assert.equal(p.std, [0.229, 0.224, 0.225]);
  // The JSON object is merged over the file's preset.
  assert.is(p.model.hidden_size, 64);
  assert.is(p.model.num_hidden_layers, 6);
  assert.is(p.model_preset, 'vit-micro-32');
  // Paths in the file are relative to the file's folder.
  assert.is(p.train_dir, join(root, 'train'));
  assert.is(p.synthetic, null); // a train_dir of one's own is not overwritten with the built-in set
  assert.is(p.file, file);
  assert.is(p.sources.epochs, COMMAND_LINE);
  assert.is(p.sources.std, file);
  assert.is(p.sources.seed, 'default');

  const q = load(['--batch_size=8', '--flip', 'false', '--crop-scale', '0.5,1', '--augment.color_jitter', '0',
    '--std', '[0.2,0.3,0.4]', '--model', 'vit-ti-64', '--model.num_hidden_layers', '2', '--image-size', '48',
    '--schedule', 'constant', '--val-dir', 'val', '--pretrained', 'ckpt', '--download=no', '--resume'], file);
  assert.is(q.batch_size, 8);
  assert.is(q.augment.flip, false);
  assert.equal(q.augment.crop_scale, [0.5, 1]);
  assert.is(q.augment.color_jitter, 0);
  assert.equal(q.std, [0.2, 0.3, 0.4]);
  assert.is(q.model_preset, 'vit-ti-64');
  assert.is(q.model.num_hidden_layers, 2);
  assert.is(q.model.hidden_size, 192);
  assert.is(q.image_size, 48);
  assert.is(q.model.image_size, 48); // image_size sets the model's
  assert.is(q.schedule, 'constant');
  assert.is(q.val_dir, join(root, 'val'));
  assert.is(q.val_split, 0); // a validation folder replaces the split
  assert.is(q.pretrained, join(root, 'ckpt'));
  assert.is(q.download, false);
  assert.is(q.resume, true);
});

test('model objects: preset to start from, HF config.json bookkeeping kept', () => {
  const file = paramsFile({
    model: { preset: 'vit-micro-32', hidden_dropout_prob: 0.1, architectures: ['ViTForImageClassification'], _name_or_path: 'x' },
  });
  const p = load([], file);
  assert.is(p.model.hidden_dropout_prob, 0.1);
  assert.is(p.model.hidden_size, 128);
  assert.equal(p.model.architectures, ['ViTForImageClassification']);
  new ViTConfig(p.model);
  const q = load(['--model', '{"preset":"vit-ti-64","num_attention_heads":6}'], file);
  assert.is(q.model.num_attention_heads, 6);
  assert.is(q.model.image_size, 64);
});

test('synthetic, augment and nullable switches', () => {
  const file = paramsFile();
  assert.is(load([], file).synthetic, null);
  const s = load(['--train-dir', 'new-set', '--synthetic.per_class', '10'], file);
  assert.equal(s.synthetic, { per_class: 10, size: 64 });
  assert.is(s.train_dir, join(root, 'new-set')); // missing is fine: it will be generated
  assert.ok(load(['--synthetic'], file).synthetic);
  assert.is(load(['--no-synthetic', '--train-dir', 'train'], undefined).synthetic, null);
  expectProblem(['--no-synthetic'], undefined, 'train_dir', /^default: train_dir: not set/);
  assert.equal(load(['--synthetic', '{"per_class":5,"size":32}'], file).synthetic, { per_class: 5, size: 32 });
  const off = load(['--no-augment'], file).augment;
  assert.equal([off.random_resized_crop, off.flip, off.color_jitter], [false, false, 0]);
  const on = load(['--augment', '{"flip":false}'], file).augment;
  assert.equal([on.random_resized_crop, on.flip], [true, false]);
  assert.is(load(['--no-cache-dir'], file).cache_dir, null);
  assert.is(load(['--download'], undefined).train_dir, join(root, 'data/PetImages'));
  assert.is(load(['--download'], undefined).synthetic, null);
  // --download over a file that generates the built-in set (the shipped demo): the flag wins
  const demo = paramsFile({ train_dir: 'demo-set', synthetic: { per_class: 10, size: 32 } }, 'demo.json');
  const dl = load(['--download'], demo);
  assert.is(dl.synthetic, null);
  assert.is(dl.train_dir, join(root, 'data/PetImages'));
  assert.is(load(['--download', '--train-dir', 'pets'], demo).train_dir, join(root, 'pets'));
  assert.is(load(['--download'], paramsFile({ download: false })).train_dir, join(root, 'train'));
});

test('the built-in demo params: paths from the working directory; --download works over them', () => {
  const demo = loadParams({ file: DEMO_PARAMS, argv: [], cwd: root });
  assert.is(demo.train_dir, join(root, '.cache/synthetic-catsvdogs'));
  assert.is(demo.out_dir, join(root, 'runs/demo'));
  assert.equal(demo.synthetic, { per_class: 1000, size: 64 });
  assert.is(demo.file, null);
  assert.is(demo.sources.epochs, DEMO_PARAMS.name);
  assert.is(loadParams({ file: DEMO_PARAMS, argv: ['--params', paramsFile({ epochs: 3 })], cwd: root }).epochs, 3); // --params replaces them
  const p = loadParams({ file: DEMO_PARAMS, argv: ['--download'], cwd: root });
  assert.is(p.synthetic, null);
  assert.ok(p.download);
  assert.is(p.train_dir, join(root, 'data/PetImages'));
});

test('crop_pct: a fraction, or "auto" = the mean side of the training crops', () => {
  assert.is(load([], paramsFile()).crop_pct, 1);
  assert.is(load(['--crop-pct', '0.875'], paramsFile()).crop_pct, 0.875);
  // "auto": E[sqrt(area)] for an area uniform in crop_scale, checked against a midpoint sum
  const meanSide = (lo: number, hi: number) => {
    let sum = 0;
    for (let i = 0; i < 100000; i++) sum += Math.sqrt(lo + ((i + 0.5) / 100000) * (hi - lo));
    return sum / 100000;
  };
  const auto = load(['--crop-pct', 'auto', '--crop-scale', '0.35,1'], paramsFile()).crop_pct;
  assert.ok(Math.abs(auto - meanSide(0.35, 1)) < 1e-6, `${auto}`);
  assert.ok(Math.abs(load([], paramsFile({ crop_pct: 'auto' })).crop_pct - meanSide(0.6, 1)) < 1e-6); // default crop_scale
  assert.is(load(['--crop-pct', 'auto', '--crop-scale', '0.5,0.5'], paramsFile()).crop_pct, Math.sqrt(0.5));
  assert.is(load(['--crop-pct', 'auto', '--no-augment'], paramsFile()).crop_pct, 1);
  assert.equal(meanCropSide({ random_resized_crop: false, crop_scale: [0.1, 1], flip: true, color_jitter: 0 }), 1);
  for (const bad of [0, 1.5, 'big']) {
    expectProblem([], paramsFile({ crop_pct: bad }), 'crop_pct', /params\.json: crop_pct: expected a number with 0 < crop_pct <= 1, or "auto"/);
  }
});

test('--params names the file to read', () => {
  const other = paramsFile({ epochs: 4 }, 'other.json');
  assert.is(load(['--params', other]).epochs, 4);
  assert.is(load(['--params=other.json', '--epochs', '2']).epochs, 2);
});

test('unknown fields and flags: named, with the closest known name', () => {
  const file = paramsFile({ epoch: 5 });
  expectProblem([], file, 'epoch', /params\.json: epoch: unknown field "epoch"; did you mean "epochs"\?/);
  expectProblem(['--batchsize', '3'], undefined, 'batchsize', /command line: .*unknown option "--batchsize"; did you mean "--batch_size"\?/);
  expectProblem(['--learning-rate', '1e-3'], undefined, 'learning_rate', /did you mean "--lr"\?/);
  expectProblem(['--model.hidden_sise', '64'], undefined, 'model.hidden_sise', /did you mean "hidden_size"\?/);
  expectProblem(['--augment', '{"flipp":true}'], undefined, 'augment.flipp', /did you mean "flip"\?/);
  expectProblem(['--model', 'vit-tiny-64'], undefined, 'model', /unknown model preset "vit-tiny-64"; did you mean "vit-ti-64"\?/);
  expectProblem(['stray'], undefined, 'argument', /unexpected argument "stray"/);
  expectProblem(['--xyzzy'], undefined, 'xyzzy', /unknown option "--xyzzy"; expected one of: --train_dir/);
});

test('wrong types and out-of-range values: field, source and what was expected', () => {
  const cases: [Record<string, unknown>, string, RegExp][] = [
    [{ lr: '1e-3' }, 'lr', /params\.json: lr: expected a number > 0, got "1e-3" \(a string\)/],
    [{ lr: 0 }, 'lr', /expected a number > 0, got 0/],
    [{ lr: -1 }, 'lr', /expected a number > 0, got -1/],
    [{ epochs: 0 }, 'epochs', /expected an integer >= 1, got 0/],
    [{ epochs: 2.5 }, 'epochs', /expected an integer >= 1, got 2.5/],
    [{ batch_size: 0 }, 'batch_size', /expected an integer >= 1, got 0/],
    [{ mean: [0.5, 0.5] }, 'mean', /expected 3 numbers \(R, G, B\), got \[0.5,0.5\] \(an array of 2\)/],
    [{ std: [0.2, 0, 0.2] }, 'std', /expected 3 numbers \(R, G, B\), each > 0/],
    [{ std: 0.5 }, 'std', /expected 3 numbers/],
    [{ val_split: 1 }, 'val_split', /expected a number in \[0, 1\), got 1/],
    [{ val_split: -0.1 }, 'val_split', /expected a number in \[0, 1\)/],
    [{ schedule: 'linear' }, 'schedule', /expected one of "cosine", "constant", got "linear"/],
    [{ augment: { flip: 'yes' } }, 'augment.flip', /expected true or false, got "yes"/],
    [{ augment: { crop_scale: [0.9, 0.5] } }, 'augment.crop_scale', /0 < min <= max <= 1/],
    [{ model: { hidden_size: 100, num_attention_heads: 3 } }, 'model.hidden_size', /params\.json: model\.hidden_size: The hidden size \(100\) is not a multiple of the number of attention heads \(3\)/],
    [{ model: { patch_size: 5 } }, 'model.patch_size', /params\.json: model\.patch_size: The image size \(32\) is not a multiple of the patch size \(5\)/],
    [{ model: { hidden_size: 0 } }, 'model.hidden_size', /params\.json: model\.hidden_size: expected a positive integer, got 0$/],
    [{ model: { hidden_act: 'relu' } }, 'model.hidden_act', /params\.json: model\.hidden_act: hidden_act "relu" is not supported/],
    [{ model: { hidden_dropout_prob: 1 } }, 'model.hidden_dropout_prob', /expected a probability in \[0, 1\), got 1$/],
    [{ model: { image_size: [32, 48] } }, 'model.image_size', /expected a square size \(the loader makes square images\), got \[32,48\]/],
    [{ model: { num_channels: 1 } }, 'model.num_channels', /expected 3 \(the loader makes RGB images\), got 1/],
    [{ model: { id2label: ['cat'] } }, 'model.id2label', /expected an object \{"0": "name", \.\.\.\}/],
    [{ model: 42 }, 'model', /expected a preset name \(vit-nano-32, .*\) or an object of ViTConfig fields, got 42/],
    [{ synthetic: { per_class: 0 } }, 'synthetic.per_class', /expected an integer >= 1/],
    [{ download: 'true' }, 'download', /expected true or false, got "true"/],
  ];
  for (const [extra, field, pattern] of cases) expectProblem([], paramsFile(extra), field, pattern);
  expectProblem(['--epochs', 'three'], undefined, 'epochs', /command line: epochs \(--epochs\): expected an integer >= 1, got "three"/);
  expectProblem(['--batch-size', '0'], undefined, 'batch_size', /command line: batch_size \(--batch-size\): expected an integer >= 1, got 0/);
  expectProblem(['--mean', '0.5,0.5'], undefined, 'mean', /expected 3 numbers/);
  expectProblem(['--lr'], undefined, 'lr', /--lr expects a value/);
  expectProblem(['--no-lr'], undefined, 'lr', /cannot be turned off/);
  expectProblem(['--image-size', '30'], undefined, 'image_size', /command line: image_size \(--image-size\): The image size \(30\) is not a multiple of the patch size \(4\)/);
  expectProblem(['--model.hidden_size', 'wide'], undefined, 'model.hidden_size', /command line: model\.hidden_size \(--model\.hidden_size\): expected a positive integer, got "wide" \(a string\)/);
  // each model field's problem names where that field was set
  const file = paramsFile({ model: { preset: 'vit-micro-32', hidden_size: 0 } });
  const err = problemsOf(['--model.num_hidden_layers', '0'], file);
  assert.equal(err.problems.map((p) => [p.field, p.source]), [['model.hidden_size', file], ['model.num_hidden_layers', COMMAND_LINE]]);
});

test('folders: missing or not folders, unless the built-in set will be made there', () => {
  expectProblem([], paramsFile({ train_dir: 'nope' }), 'train_dir', /params\.json: train_dir: folder ".*nope" does not exist \(expected an existing folder of training images/);
  expectProblem(['--train-dir', 'nope'], undefined, 'train_dir', /command line: train_dir \(--train-dir\): folder ".*nope" does not exist/);
  expectProblem(['--val-dir', 'nope'], paramsFile(), 'val_dir', /folder ".*nope" does not exist/);
  expectProblem(['--train-dir', 'not-a-folder'], undefined, 'train_dir', /is not a folder/);
  expectProblem(['--pretrained', 'nope'], undefined, 'pretrained', /does not exist \(expected an HF checkpoint folder/);
  expectProblem(['--pretrained', 'train'], undefined, 'pretrained', /has no config\.json/);
  expectProblem(['--out-dir', 'not-a-folder'], undefined, 'out_dir', /is not a folder/);
  expectProblem(['--download', '--synthetic'], undefined, 'download', /choose one/);
  load(['--train-dir', 'nope', '--synthetic']);
});

test('files: missing, not JSON, not an object; all problems reported at once', () => {
  expectProblem([], join(root, 'missing.json'), 'params', /missing\.json does not exist/);
  writeFileSync(join(root, 'bad.json'), '{ "epochs": 3, }');
  expectProblem([], join(root, 'bad.json'), 'params', /not valid JSON/);
  writeFileSync(join(root, 'list.json'), '[1, 2]');
  expectProblem([], join(root, 'list.json'), 'params', /expected a JSON object of parameters, got \[1,2\]/);
  const err = problemsOf(['--lr', '-1', '--epochs', '0'], paramsFile({ batch_size: 0, mean: [1] }));
  assert.is(err.problems.length, 4);
  assert.match(err.message, /^4 problems with the parameters:\n {2}- /);
  assert.equal(new Set(err.problems.map((p) => p.field)), new Set(['lr', 'epochs', 'batch_size', 'mean']));
});

test('help lists every field and preset', () => {
  const help = paramsHelp();
  for (const f of ['train_dir', 'val_split', 'model', 'augment', 'synthetic', 'warmup_epochs', 'vit-ti-64']) assert.ok(help.includes(f), f);
});

test.run();
