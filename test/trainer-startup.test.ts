// The trainer's checks before it trains, and --resume's bookkeeping: an out_dir it cannot write,
// a batch too large for the device (with the napkin sizes measured against real buffers), nothing left
// behind after a start-up error or a NaN stop, --resume with another batch_size, a checkpoint missing
// a file. Built-in set and a tiny model; each run takes a second or two.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { main } from '../src/cli.ts';
import { Device } from '../src/gpu/device.ts';
import { Tensor, tidy } from '../src/tensor.ts';
import { ViTConfig } from '../src/vit/config.ts';
import { ViTForImageClassification } from '../src/vit/modeling.ts';
import { AdamW } from '../src/optim/adamw.ts';
import { stepMemory } from '../src/train/trainer.ts';
import { readTrainerState } from '../src/train/checkpoint.ts';
import { snapshot } from './helpers.ts';

const root = mkdtempSync(join(tmpdir(), 'trainer-startup-'));
const TINY = { preset: 'vit-nano-32', image_size: 16, hidden_size: 32, num_hidden_layers: 2, num_attention_heads: 2, intermediate_size: 64 };
const params = join(root, 'params.json');
// 48 images: 36 for training (batch 8: 5 steps, the last of 4 images), 12 for validation
writeFileSync(params, JSON.stringify({
  synthetic: { per_class: 24, size: 32 }, train_dir: join(root, 'syn'), out_dir: join(root, 'run'), cache_dir: join(root, 'cache'),
  model: TINY, epochs: 1, lr: 1e-3, batch_size: 8, val_split: 0.25, workers: 0,
}));

interface Run { code: number; out: string; err: string; steps: { epoch: number; stepInEpoch: number }[] }

async function run(argv: string[], stopAfter?: (steps: Run['steps']) => boolean): Promise<Run> {
  const out: string[] = [], err: string[] = [], steps: Run['steps'] = [];
  const code = await main(['--params', params, ...argv], { out: (s) => out.push(s), err: (s) => err.push(s), progress: null }, {
    onStep: (i) => steps.push(i), shouldStop: () => !!stopAfter?.(steps),
  });
  return { code, out: out.join('\n'), err: err.join('\n'), steps };
}

test('an out_dir that cannot be written fails before training, naming it', async () => {
  const file = join(root, 'a-file');
  writeFileSync(file, 'mine');
  const under = await run(['--out-dir', join(file, 'run')]);
  assert.is(under.code, 2, under.err);
  assert.match(under.err, `out_dir ${join(file, 'run')}: ${file} is a file, not a folder`);
  assert.is(under.steps.length, 0);
  assert.is(readFileSync(file, 'utf8'), 'mine');
  // a folder that exists but takes no new entry, even from root (access() says yes to root there)
  const sys = await run(['--out-dir', '/sys']);
  assert.is(sys.code, 2, sys.err);
  assert.match(sys.err, /out_dir \/sys: cannot write in \/sys \(E[A-Z]+\)/);
  assert.is(sys.steps.length, 0, 'it trained before finding out');
});

/** Runs one training step of `config` at `batch`; returns its largest buffer and its peak memory (bytes). */
async function measureStep(config: Record<string, unknown>, batch: number): Promise<{ largest: number; peak: number }> {
  const device = Device.default, pool = device.pool;
  const acquire = pool.acquire;
  let largest = 0;
  pool.acquire = (bytes: number) => {
    largest = Math.max(largest, bytes);
    return acquire.call(pool, bytes);
  };
  const base = device.memoryStats().bytesInUse;
  pool.resetPeak();
  try {
    const model = new ViTForImageClassification(new ViTConfig(config as any));
    const opt = new AdamW(model.parameters(), { lr: 1e-3 });
    const S = model.config.imageHW[0];
    try {
      for (let i = 0; i < 2; i++) { // the second step has the AdamW moments too
        const loss = tidy(() => {
          const o = model.forward(Tensor.fromArray(new Float32Array(batch * 3 * S * S).fill(0.5), [batch, 3, S, S]), { labels: new Int32Array(batch) });
          o.loss!.backward();
          opt.step();
          opt.zeroGrad();
          return o.loss!;
        });
        await loss.toArray();
        loss.dispose();
      }
    } finally {
      opt.dispose();
      model.dispose();
    }
  } finally {
    pool.acquire = acquire;
  }
  return { largest, peak: device.memoryStats().peakBytesInUse - base };
}

test('stepMemory: the napkin sizes bound the real buffers of a training step', async () => {
  const configs = [
    { ...TINY, patch_size: 4, num_labels: 2 }, // attention scores the largest
    { image_size: 32, patch_size: 8, hidden_size: 32, num_hidden_layers: 3, num_attention_heads: 2, intermediate_size: 512, num_labels: 2 }, // the MLP
  ];
  for (const c of configs) {
    for (const batch of [4, 16]) {
      const real = await measureStep(c, batch);
      const est = stepMemory(new ViTConfig(c as any), batch);
      const what = `${JSON.stringify(c)} batch ${batch}: estimated ${est.largest} / ${est.total}, measured ${real.largest} / ${real.peak}`;
      assert.ok(est.largest >= real.largest && est.largest <= 2 * real.largest, `largest buffer, ${what}`);
      assert.ok(est.total >= real.peak && est.total <= 2 * real.peak, `total, ${what}`);
    }
  }
});

test('a batch too large for the device is refused up front, with the most that fits; out_dir is not made', async () => {
  const out = join(root, 'run-huge');
  const huge = await run(['--out-dir', out, '--batch-size', '1000000000']);
  assert.is(huge.code, 2, huge.err);
  // (the attention scores where today's attention runs; where they would not fit a fused kernel takes over and the next buffer limits)
  assert.match(huge.err, /batch_size 1000000000 is too large for this device: one training step's largest buffer, the (attention scores|MLP activations|pixels) \([a-z_ ×²]+\), would take [\d.]+ GiB, past the device's max\w+ of [\d.]+ [MG]iB; batch_size \d+ at most/);
  assert.not.match(huge.err, /Invalid typed array length/);
  assert.ok(!existsSync(out));
  const most = Number(/batch_size (\d+) at most/.exec(huge.err)![1]);
  const over = await run(['--out-dir', out, '--batch-size', String(most + 1)]);
  assert.is(over.code, 2, over.err);
  assert.match(over.err, `batch_size ${most} at most`);
  assert.ok(!existsSync(out));
  const fits = await run(['--out-dir', out, '--batch-size', String(most)]);
  assert.is(fits.code, 0, fits.err);
  rmSync(out, { recursive: true });

  // more memory than the machine has (a CPU device's memory is the machine's): many layers, a batch that fits the buffers
  const perLayer = stepMemory(new ViTConfig({ ...TINY, num_hidden_layers: 2, num_labels: 2 } as any), most).total - stepMemory(new ViTConfig({ ...TINY, num_hidden_layers: 1, num_labels: 2 } as any), most).total;
  const layers = Math.ceil(totalmem() / perLayer) + 1;
  const deep = await run(['--out-dir', out, '--batch-size', String(most), '--model.num_hidden_layers', String(layers)]);
  if (Device.default.isCPU) {
    assert.is(deep.code, 2, deep.err);
    assert.match(deep.err, new RegExp(`batch_size ${most} is too large for this machine: one training step needs about [\\d.]+ GiB \\(the activations of ${layers} layers\\), more than its [\\d.]+ GiB of memory; batch_size \\d+ at most`));
    assert.ok(!existsSync(out));
  }
});

test('a NaN loss, or Ctrl-C before the first step, in a new run leaves no out_dir behind', async () => {
  const out = join(root, 'run-nan');
  const nan = await run(['--out-dir', out, '--lr', '1e38']);
  assert.is(nan.code, 1, nan.err);
  assert.match(nan.err, /the loss is not finite.*No checkpoint had been saved yet/);
  assert.ok(!existsSync(out), 'an empty out_dir was left');
  const nested = join(root, 'new-parent', 'run');
  const stopped = await run(['--out-dir', nested], () => true);
  assert.is(stopped.code, 130, stopped.err);
  assert.is(stopped.steps.length, 0);
  assert.ok(!existsSync(join(root, 'new-parent')), 'the folders made for out_dir were left');
});

test('--resume with another batch_size continues at the same image: none skipped, none twice', async () => {
  const out = join(root, 'run-bs');
  // batch 8: stop after 2 steps (16 images)
  const first = await run(['--out-dir', out], (s) => s.length >= 2);
  assert.is(first.code, 130, first.err);
  const statePath = join(out, 'last', 'trainer_state.json');
  const saved = JSON.parse(readFileSync(statePath, 'utf8'));
  assert.is(saved.step_in_epoch, 2);
  assert.is(saved.partial.seen, 16);
  // as a checkpoint from before images_in_epoch was saved: the position comes from step_in_epoch x batch_size
  delete saved.images_in_epoch;
  writeFileSync(statePath, JSON.stringify(saved));

  // batch 6: its batches [0,6) [6,12) were done, of [12,18) only images 16 and 17 are left
  const second = await run(['--out-dir', out, '--resume', '--batch-size', '6'], (s) => s.length >= 1);
  assert.is(second.code, 130, second.err);
  assert.equal(second.steps.map((s) => s.stepInEpoch), [3]);
  let st = readTrainerState(join(out, 'last'));
  assert.is(st.partial!.seen, 18);
  assert.is(st.images_in_epoch, 18);

  // to the end of the epoch: every training image seen exactly once
  const train = Number(/(\d+) training images/.exec(first.out)![1]);
  const third = await run(['--out-dir', out, '--resume', '--batch-size', '6'], (s) => s.length > 0 && s[s.length - 1].stepInEpoch === Math.ceil(train / 6));
  assert.is(third.code, 130, third.err);
  assert.is(third.steps[0].stepInEpoch, 4);
  st = readTrainerState(join(out, 'last'));
  assert.is(st.partial!.seen, train);
  assert.is(st.images_in_epoch, train);
});

test('--resume names the file a checkpoint lacks and leaves out_dir as it was', async () => {
  const out = join(root, 'run-missing');
  assert.is((await run(['--out-dir', out])).code, 0);
  rmSync(join(out, 'last', 'trainer_state.json'));
  const before = snapshot(out);
  const r = await run(['--out-dir', out, '--resume']);
  assert.is(r.code, 2, r.err);
  assert.match(r.err, `--resume: the checkpoint ${join(out, 'last')} has no trainer_state.json, which --resume needs (it holds config.json, model.safetensors, optimizer.safetensors, preprocessor_config.json)`);
  rmSync(join(out, 'last', 'optimizer.safetensors'));
  const both = await run(['--out-dir', out, '--resume']);
  assert.is(both.code, 2, both.err);
  assert.match(both.err, 'has no optimizer.safetensors and no trainer_state.json');
  delete before['/last/optimizer.safetensors'];
  assert.equal(snapshot(out), before);
});

test.run();
