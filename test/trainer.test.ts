// The cats-vs-dogs trainer end to end, through the CLI's main(): a slice of the real photos and the
// built-in synthetic set, tiny models. Log line format, metrics.jsonl, the plot, checkpoints that
// reload to the same predictions, --resume after a finished run and after Ctrl-C, bad parameters that
// leave out_dir alone, and the predict and eval subcommands.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { main } from '../src/cli.ts';
import { ViTForImageClassification } from '../src/vit/modeling.ts';
import { Tensor } from '../src/tensor.ts';
import { ImageLoader } from '../src/data/loader.ts';
import { scanDataset } from '../src/data/layouts.ts';
import { evaluate, learningRate } from '../src/train/trainer.ts';
import { attentionRollout } from '../src/train/inference.ts';
import { SHARED, snapshot } from './helpers.ts';
import { parseSafetensors } from '../src/io/safetensors.ts';
import { readPreprocessing, readTrainerState } from '../src/train/checkpoint.ts';
import { meanCropSide } from '../src/train/params.ts';

const root = mkdtempSync(join(tmpdir(), 'trainer-test-'));
const PHOTOS = join(SHARED, 'data/catsdogs');
const CLI = fileURLToPath(new URL('../examples/catsvdogs.ts', import.meta.url));
const EPOCH_LINE = /^Epoch : \d+ - loss : \d+\.\d{4} - acc: [01]\.\d{4} - val_loss : \d+\.\d{4} - val_acc: [01]\.\d{4}$/;

/** A tiny model: 16 px, patch 4, 2 layers of width 32. */
const TINY = { preset: 'vit-nano-32', image_size: 16, hidden_size: 32, num_hidden_layers: 2, num_attention_heads: 2, intermediate_size: 64 };

interface Run { code: number; out: string[]; err: string[] }

async function run(argv: string[], hooks: Parameters<typeof main>[2] = {}): Promise<Run> {
  const out: string[] = [], err: string[] = [];
  const code = await main(argv, { out: (s) => out.push(...s.split('\n')), err: (s) => err.push(s), progress: null }, hooks);
  return { code, out, err };
}

function writeParams(name: string, fields: Record<string, unknown>): string {
  const path = join(root, name);
  writeFileSync(path, JSON.stringify(fields, null, 1));
  return path;
}

const readJsonl = (path: string) => readFileSync(path, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
const trainerState = (dir: string) => readTrainerState(join(dir, 'last'));

// A slice of the real photos: 20 + 20 for training, 8 + 8 for validation, class folders.
const slice = join(root, 'photos');
for (const [split, n] of [['train', 20], ['val', 8]] as const) {
  for (const cls of ['cats', 'dogs']) {
    const from = join(PHOTOS, split, cls);
    mkdirSync(join(slice, split, cls), { recursive: true });
    for (const f of readdirSync(from).sort().slice(0, n)) copyFileSync(join(from, f), join(slice, split, cls, f));
  }
}

const photoParams = writeParams('photos.json', {
  train_dir: 'photos/train', val_dir: 'photos/val', out_dir: 'run-photos', cache_dir: 'cache',
  model: TINY, epochs: 2, lr: 1e-3, batch_size: 16, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5], warmup_epochs: 1, workers: 1,
  crop_pct: 'auto', augment: { crop_scale: [0.5, 1] },
});
const photoOut = join(root, 'run-photos');

test('photos: two epochs, exact log lines, metrics.jsonl, plot, checkpoints', async () => {
  const live = Tensor.liveCount;
  const r = await run(['--params', photoParams]);
  assert.is(r.code, 0, r.err.join('\n'));
  assert.is(Tensor.liveCount, live, 'tensors leaked');
  const lines = r.out.filter((l) => l.startsWith('Epoch'));
  assert.is(lines.length, 2);
  for (const l of lines) assert.match(l, EPOCH_LINE);
  assert.match(lines[0], /^Epoch : 1 /);
  assert.match(lines[1], /^Epoch : 2 /);

  const metrics = readJsonl(join(photoOut, 'metrics.jsonl'));
  assert.is(metrics.length, 2);
  assert.equal(metrics.map((m) => m.epoch), [1, 2]);
  for (const m of metrics) for (const k of ['loss', 'acc', 'val_loss', 'val_acc', 'lr', 'step']) assert.type(m[k], 'number');
  // the line prints the metrics' numbers
  assert.ok(lines[1].endsWith(`val_acc: ${metrics[1].val_acc.toFixed(4)}`));

  const png = PNG.sync.read(readFileSync(join(photoOut, 'plot.png')));
  assert.ok(png.width >= 200 && png.height >= 120);

  for (const d of ['last', 'best']) {
    const cfg = JSON.parse(readFileSync(join(photoOut, d, 'config.json'), 'utf8'));
    assert.equal(cfg.id2label, { 0: 'cats', 1: 'dogs' });
    assert.equal(cfg.architectures, ['ViTForImageClassification']);
    assert.ok(existsSync(join(photoOut, d, 'model.safetensors')));
    assert.ok(existsSync(join(photoOut, d, 'preprocessor_config.json')));
  }
  assert.ok(existsSync(join(photoOut, 'last', 'optimizer.safetensors')));
  const st = trainerState(photoOut);
  assert.is(st.epoch, 2);
  assert.is(st.global_step, 6); // 40 images, batch 16: 3 steps per epoch
});

test('photos: the saved model gives the same validation loss and accuracy', async () => {
  const metrics = readJsonl(join(photoOut, 'metrics.jsonl'));
  const last = metrics[metrics.length - 1];
  const model = await ViTForImageClassification.fromPretrained(join(photoOut, 'last'), { warn: false });
  // the checkpoint records the validation centre crop ("auto" for crop_scale [0.5, 1])
  const pre = readPreprocessing(join(photoOut, 'last'))!;
  assert.is(pre.cropPct, meanCropSide({ random_resized_crop: true, crop_scale: [0.5, 1], flip: true, color_jitter: 0 }));
  assert.ok(pre.cropPct < 1);
  const ds = scanDataset(join(slice, 'val'));
  const loader = new ImageLoader({ items: ds.items, classes: ds.classes, imageSize: 16, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5], batchSize: 16, shuffle: false, workers: 0, centerCrop: pre.cropPct });
  try {
    const st = trainerState(photoOut);
    const v = await evaluate(model, loader, null, st.params.label_smoothing as number);
    assert.ok(Array.isArray(v));
    const [loss, acc] = v as [number, number];
    assert.ok(Math.abs(loss - last.val_loss) < 1e-5, `${loss} vs ${last.val_loss}`);
    assert.is(acc, last.val_acc);
  } finally {
    await loader.close();
    model.dispose();
  }
});

test('photos: fine-tuning from `pretrained` starts from its weights, with a new 3-class head', async () => {
  // a third class (a copy of some cats) so the classifier's shape no longer matches the checkpoint
  const three = join(root, 'photos3');
  for (const [cls, from] of [['cats', 'cats'], ['dogs', 'dogs'], ['foxes', 'cats']]) {
    mkdirSync(join(three, cls), { recursive: true });
    for (const f of readdirSync(join(slice, 'train', from)).slice(0, 8)) copyFileSync(join(slice, 'train', from, f), join(three, cls, f));
  }
  const out = join(root, 'run-finetune');
  // a vanishing lr: after one epoch the weights must still be the checkpoint's
  const params = writeParams('finetune.json', {
    train_dir: 'photos3', val_split: 0.25, out_dir: 'run-finetune', cache_dir: 'cache', pretrained: 'run-photos/last',
    epochs: 1, lr: 1e-12, weight_decay: 0, batch_size: 8, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5], workers: 1,
  });
  const r = await run(['--params', params]);
  assert.is(r.code, 0, r.err.join('\n'));
  assert.ok(r.out.concat(r.err).some((l) => /fine-tuning .*run-photos/.test(l)), 'the log names the checkpoint');
  const cfg = JSON.parse(readFileSync(join(out, 'last', 'config.json'), 'utf8'));
  assert.equal(cfg.id2label, { 0: 'cats', 1: 'dogs', 2: 'foxes' });
  assert.is(cfg.hidden_size, TINY.hidden_size); // the checkpoint's architecture, not a preset's
  const read = (dir: string) => parseSafetensors(readFileSync(join(dir, 'model.safetensors')), dir).tensors;
  const before = read(join(photoOut, 'last'));
  const after = read(join(out, 'last'));
  assert.equal(after.get('classifier.weight')!.shape, [3, TINY.hidden_size]);
  let compared = 0;
  for (const [name, t] of before) {
    if (name.startsWith('classifier.')) continue;
    const a = t.data as Float32Array, b = after.get(name)!.data as Float32Array;
    assert.is(b.length, a.length, name);
    for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) <= 1e-6, `${name}[${i}]: ${a[i]} vs ${b[i]}`);
    compared++;
  }
  assert.ok(compared > 10);
});

test('photos: eval prints counts, a confusion matrix and accuracy last; predict labels images', async () => {
  const e = await run(['eval', '--checkpoint', photoOut, '--data', join(slice, 'val')]);
  assert.is(e.code, 0, e.err.join('\n'));
  assert.match(e.out[e.out.length - 1], /^accuracy: \d\.\d{4}$/);
  assert.ok(e.out.some((l) => /Confusion matrix/.test(l)));
  const metrics = readJsonl(join(photoOut, 'metrics.jsonl'));
  const best = Math.max(...metrics.map((m) => m.val_acc));
  assert.is(e.out[e.out.length - 1], `accuracy: ${best.toFixed(4)}`); // best/ is what eval picks in an out_dir
  // predict preprocesses as eval does (centre crop included): its labels give the same accuracy
  const all = ['cats', 'dogs'].flatMap((c) => readdirSync(join(slice, 'val', c)).map((f) => ({ path: join(slice, 'val', c, f), c })));
  const pa = await run(['predict', '--checkpoint', photoOut, ...all.map((x) => x.path)]);
  assert.is(pa.code, 0, pa.err.join('\n'));
  const right = all.filter((x) => pa.out.some((l) => l.startsWith(`${x.path}: ${x.c} `))).length;
  assert.is(`accuracy: ${(right / all.length).toFixed(4)}`, e.out[e.out.length - 1]);
  const uncropped = await run(['eval', '--checkpoint', photoOut, '--data', join(slice, 'val'), '--crop-pct', '1']);
  assert.is(uncropped.code, 0, uncropped.err.join('\n'));
  assert.is((await run(['eval', '--checkpoint', photoOut, '--data', join(slice, 'val'), '--crop-pct', '0'])).code, 2);

  const imgs = readdirSync(join(slice, 'val', 'cats')).slice(0, 2).map((f) => join(slice, 'val', 'cats', f));
  const map = join(root, 'attn.png');
  const p = await run(['predict', '--checkpoint', join(photoOut, 'last'), '--attention-map', map, ...imgs]);
  assert.is(p.code, 0, p.err.join('\n'));
  const lines = p.out.filter((l) => l.length > 0);
  assert.is(lines.length, 2);
  for (const l of lines) assert.match(l, /: (cats|dogs) [01]\.\d{4}$/);
  for (const f of ['attn-1.png', 'attn-2.png']) {
    const png = PNG.sync.read(readFileSync(join(root, f)));
    assert.ok(Math.max(png.width, png.height) >= 224); // the longer side is at least 224 px
  }
});

test('photos: --resume continues the epoch numbering and the optimizer steps', async () => {
  const r = await run(['--params', photoParams, '--resume', '--epochs', '3']);
  assert.is(r.code, 0, r.err.join('\n'));
  const lines = r.out.filter((l) => l.startsWith('Epoch'));
  assert.is(lines.length, 1);
  assert.match(lines[0], /^Epoch : 3 /);
  assert.match(lines[0], EPOCH_LINE);
  assert.is(readJsonl(join(photoOut, 'metrics.jsonl')).length, 3);
  const st = trainerState(photoOut);
  assert.is(st.epoch, 3);
  assert.is(st.global_step, 9);
});

// The built-in set, a handful of images per class.
const synParams = writeParams('syn.json', {
  synthetic: { per_class: 24, size: 32 }, train_dir: 'syn-data', out_dir: 'run-syn', cache_dir: 'cache',
  model: TINY, epochs: 2, lr: 1e-3, batch_size: 8, val_split: 0.25, workers: 0, eval_every: 1,
});
const synOut = join(root, 'run-syn');

test('built-in set: Ctrl-C mid-epoch saves, --resume finishes with the same step count', async () => {
  // 36 training images, batch 8: 5 steps per epoch. Stop after step 2 of epoch 1.
  let steps = 0;
  const r = await run(['--params', synParams], { onStep: () => { steps++; }, shouldStop: () => steps >= 2 });
  assert.is(r.code, 130, r.err.join('\n'));
  assert.ok(r.out.some((l) => /Interrupted/.test(l)));
  let st = trainerState(synOut);
  assert.is(st.epoch, 0);
  assert.is(st.step_in_epoch, 2);
  assert.is(st.global_step, 2);
  assert.ok(!existsSync(join(synOut, 'metrics.jsonl')) || readFileSync(join(synOut, 'metrics.jsonl'), 'utf8') === '');

  const again = await run(['--params', synParams, '--resume']);
  assert.is(again.code, 0, again.err.join('\n'));
  const lines = again.out.filter((l) => l.startsWith('Epoch'));
  assert.equal(lines.map((l) => l.split(' - ')[0]), ['Epoch : 1', 'Epoch : 2']);
  for (const l of lines) assert.match(l, EPOCH_LINE);
  st = trainerState(synOut);
  assert.is(st.epoch, 2);
  assert.is(st.global_step, 10);
  assert.equal(readJsonl(join(synOut, 'metrics.jsonl')).map((m) => m.step), [5, 10]);
});

test("built-in set: a run stopped (mid-epoch or at an epoch's end) and resumed ends bit for bit like an uninterrupted one", async () => {
  // augmentation on, so that the data order and the crops, flips and jitter must be restored too
  const params = (out: string) => writeParams(`${out}.json`, {
    synthetic: { per_class: 24, size: 32 }, train_dir: 'syn-data', out_dir: out, cache_dir: 'cache', model: TINY,
    epochs: 3, lr: 1e-3, batch_size: 8, val_split: 0.25, workers: 0, warmup_epochs: 1,
    augment: { random_resized_crop: true, crop_scale: [0.5, 1], flip: true, color_jitter: 0.2 },
  });
  const finished = (out: string) => ({
    metrics: readJsonl(join(root, out, 'metrics.jsonl')).map(({ seconds: _s, ...m }) => m),
    files: ['model.safetensors', 'optimizer.safetensors'].map((f) => readFileSync(join(root, out, 'last', f))),
  });
  const whole = await run(['--params', params('resume-whole')]);
  assert.is(whole.code, 0, whole.err.join('\n'));
  const want = finished('resume-whole');
  assert.is(want.metrics.length, 3);
  // 36 training images, batch 8: 5 steps per epoch; stop after step 7 (epoch 2) and after step 5
  for (const [out, stopAt] of [['resume-mid', 7], ['resume-edge', 5]] as const) {
    let steps = 0;
    const first = await run(['--params', params(out)], { onStep: () => { steps++; }, shouldStop: () => steps >= stopAt });
    assert.is(first.code, 130, `${out}: ${first.err.join('\n')}`);
    const again = await run(['--params', params(out), '--resume']);
    assert.is(again.code, 0, `${out}: ${again.err.join('\n')}`);
    const got = finished(out);
    assert.equal(got.metrics, want.metrics, `${out}: metrics`);
    assert.ok(got.files[0].equals(want.files[0]), `${out}: the weights differ from the uninterrupted run's`);
    assert.ok(got.files[1].equals(want.files[1]), `${out}: the AdamW moments differ from the uninterrupted run's`);
  }
});

test('bad parameters and run conflicts: each has its message, out_dir is untouched', async () => {
  const before = snapshot(synOut);
  const cases: [string[], RegExp][] = [
    [['--params', writeParams('bad1.json', { epoch: 3 })], /epoch.*did you mean "epochs"/],
    [['--params', writeParams('bad2.json', { lr: 'fast', out_dir: 'run-syn' })], /lr: expected a number > 0, got "fast"/],
    [['--params', writeParams('bad3.json', { train_dir: 'no-such-folder', out_dir: 'run-syn' })], /train_dir.*no-such-folder.*does not exist/],
    [['--params', writeParams('bad4.json', { batch_size: 0, out_dir: 'run-syn' })], /batch_size: expected an integer >= 1/],
    [['--params', synParams, '--model.hidden_size', '33'], /model\.hidden_size.*The hidden size \(33\) is not a multiple of/],
    [['--params', synParams], /already holds a training run \(2 epochs done of 2\).*--resume.*--overwrite/],
    [['--params', synParams, '--resume', '--overwrite'], /contradict/],
    [['--params', synParams, '--resume', '--model.hidden_size', '64', '--model.num_attention_heads', '2'], /--resume: the checkpoint.*hidden_size 32/],
    [['--params', synParams, '--bogus', '1'], /unknown option "--bogus"/],
  ];
  for (const [argv, pattern] of cases) {
    const r = await run(argv);
    assert.is(r.code, 2, `${argv.join(' ')}: code ${r.code}\n${r.err.join('\n')}`);
    assert.match(r.err.join('\n'), pattern);
  }
  assert.equal(snapshot(synOut), before);
  // Problems found before training create nothing.
  const birds = join(root, 'birds-val');
  mkdirSync(join(birds, 'birds'), { recursive: true });
  copyFileSync(join(slice, 'val', 'cats', readdirSync(join(slice, 'val', 'cats'))[0]), join(birds, 'birds', 'b.jpg'));
  const never = join(root, 'never-made');
  for (const [argv, pattern] of [
    [['--resume'], /nothing to resume/],
    [['--val-split', '0'], /no validation set/],
    [['--val-dir', birds], /val_dir .* has classes the training data does not \(birds; training classes: cat, dog\)/],
  ] as [string[], RegExp][]) {
    const r = await run(['--params', synParams, '--out-dir', never, ...argv]);
    assert.is(r.code, 2, r.err.join('\n'));
    assert.match(r.err.join('\n'), pattern);
    assert.ok(!existsSync(never));
  }
  // Nothing decodable: one line naming the problem, no out_dir.
  for (const cls of ['cats', 'dogs']) {
    mkdirSync(join(root, 'junk', cls), { recursive: true });
    for (let i = 0; i < 3; i++) writeFileSync(join(root, 'junk', cls, `${i}.jpg`), 'not an image');
  }
  const junk = await run(['--params', synParams, '--out-dir', never, '--no-synthetic', '--train-dir', join(root, 'junk')]);
  assert.is(junk.code, 1);
  assert.match(junk.err.join('\n'), /error: no decodable images among 4 files/);
  assert.ok(!existsSync(never));
});

test('built-in set: --overwrite replaces the run and keeps other files', async () => {
  writeFileSync(join(synOut, 'notes.txt'), 'mine');
  const r = await run(['--params', synParams, '--overwrite', '--epochs', '1']);
  assert.is(r.code, 0, r.err.join('\n'));
  assert.is(readFileSync(join(synOut, 'notes.txt'), 'utf8'), 'mine');
  assert.is(readJsonl(join(synOut, 'metrics.jsonl')).length, 1);
  assert.is(trainerState(synOut).epoch, 1);
});

test('built-in set: a NaN loss stops the run and leaves the last good checkpoint alone', async () => {
  const before = snapshot(join(synOut, 'last'));
  // lr 1e38: the first update sends the weights to ~1e37, and the next forward overflows.
  const r = await run(['--params', synParams, '--resume', '--epochs', '2', '--lr', '1e38']);
  assert.is(r.code, 1, r.err.join('\n'));
  assert.match(r.err.join('\n'), /Epoch 2, step \d+: the loss is not finite \(NaN or Inf\); stopping\. The last good checkpoint, .*last, is unchanged/);
  assert.equal(snapshot(join(synOut, 'last')), before);
  assert.is(readJsonl(join(synOut, 'metrics.jsonl')).length, 1);
});

test('the CLI process: Ctrl-C (SIGINT) saves last/ and exits with 130', async () => {
  const out = join(root, 'run-sigint');
  const child = spawn(process.execPath, ['--conditions=vitcatsvdogs-source', '--import', 'tsx', CLI, '--params', synParams, '--out-dir', out, '--epochs', '50'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '', stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  const code = await new Promise<number | null>((resolve) => {
    child.stdout.on('data', (d) => {
      stdout += d;
      if (/^Epoch : 1 /m.test(stdout) && !child.killed) child.kill('SIGINT'); // during epoch 2
    });
    child.on('exit', (c) => resolve(c));
    setTimeout(() => child.kill('SIGKILL'), 60_000);
  });
  assert.is(code, 130, stderr);
  assert.match(stdout, /Interrupted/);
  const st = trainerState(out);
  // mid-epoch (reason "interrupt") or, if the signal came as an epoch ended, that epoch's checkpoint
  assert.ok(st.epoch >= 1 && st.epoch < 50);
  assert.ok(st.reason === 'interrupt' || st.step_in_epoch === 0);
});

test('learning-rate schedule: linear warm-up, then cosine to zero or constant', () => {
  const s = { lr: 1, schedule: 'cosine' as const, warmupSteps: 4, totalSteps: 14 };
  assert.equal([0, 1, 2, 3].map((i) => learningRate(i, s)), [0.25, 0.5, 0.75, 1]);
  assert.ok(Math.abs(learningRate(9, s) - 0.5) < 1e-12);
  assert.ok(learningRate(13, s) > 0 && learningRate(13, s) < 0.03);
  assert.is(learningRate(9, { ...s, schedule: 'constant' }), 1);
});

// (rollout's arithmetic is checked against a matrix reference in test/rollout.test.ts)
test('attention rollout: CLS-to-patch attention shows up on that patch', () => {
  const T = 5, heads = 2;
  const eye = new Float32Array(heads * T * T);
  for (let h = 0; h < heads; h++) for (let i = 0; i < T; i++) eye[h * T * T + i * T + i] = 1;
  const focus = eye.slice();
  for (let h = 0; h < heads; h++) {
    focus[h * T * T] = 0;
    focus[h * T * T + 3] = 1; // CLS attends to patch 3 (token 3)
  }
  const r = attentionRollout([focus], heads, T);
  assert.is(r.indexOf(Math.max(...r)), 2);
});

test.run();
