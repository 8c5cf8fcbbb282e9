// The command line's predict and eval on small hand-made checkpoints: the flag syntax, and
// checkpoints they must refuse (NaN weights, no classifier head, weights that contradict config.json).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../src/cli.ts';
import { ViTConfig } from '../src/vit/config.ts';
import { ViTForImageClassification, ViTModel } from '../src/vit/modeling.ts';
import { stateDict } from '../src/vit/pretrained.ts';
import { writeCheckpointDir } from '../src/io/files-node.ts';
import { SHARED } from './helpers.ts';

const root = mkdtempSync(join(tmpdir(), 'cli-test-'));
const TINY = { image_size: 16, patch_size: 4, hidden_size: 32, num_hidden_layers: 1, num_attention_heads: 2, intermediate_size: 64 };
const LABELS = { id2label: { 0: 'cats', 1: 'dogs' } };

interface Run { code: number; out: string[]; err: string }

async function run(argv: string[]): Promise<Run> {
  const out: string[] = [], err: string[] = [];
  const code = await main(argv, { out: (s) => out.push(...s.split('\n')), err: (s) => err.push(s), progress: null });
  return { code, out, err: err.join('\n') };
}

/** A checkpoint of a fresh model of `arch` (classifier or bare ViTModel), its tensors edited, saved with `config`. */
async function checkpoint(name: string, opts: { bare?: boolean; config?: Record<string, unknown>; edit?: (t: Awaited<ReturnType<typeof stateDict>>) => void } = {}): Promise<string> {
  const config = new ViTConfig({ ...TINY, ...LABELS });
  const model = opts.bare ? new ViTModel(config) : new ViTForImageClassification(config);
  const tensors = await stateDict(model);
  model.dispose();
  opts.edit?.(tensors);
  const dir = join(root, name);
  await writeCheckpointDir(dir, new ViTConfig({ ...TINY, ...LABELS, ...opts.config }), tensors);
  return dir;
}

// Three photos per class, class folders.
const data = join(root, 'data');
for (const cls of ['cats', 'dogs']) {
  const from = join(SHARED, 'data/catsdogs/val', cls);
  mkdirSync(join(data, cls), { recursive: true });
  for (const f of readdirSync(from).sort().slice(0, 3)) copyFileSync(join(from, f), join(data, cls, f));
}
const images = ['cats', 'dogs'].map((c) => join(data, c, readdirSync(join(data, c)).sort()[0]));

test('usage names the command and the npm script', async () => {
  const r = await run(['help']);
  assert.is(r.code, 0);
  assert.ok(r.out.some((l) => l.includes('vitcatsvdogs <command>')), r.out.join('\n'));
  assert.ok(r.out.some((l) => l.includes('npm run catsvdogs --')));
  assert.ok(r.out.some((l) => l.includes('vit-nano-32')), 'the model presets are listed');
});

test('predict and eval flags: kebab or snake case, =, and clear usage errors', async () => {
  const good = await checkpoint('good');
  const p = await run(['predict', `--checkpoint=${good}`, '--batch_size', '1', ...images]);
  assert.is(p.code, 0, p.err);
  assert.equal(p.out.map((l) => l.slice(0, l.lastIndexOf(':'))), images);
  for (const l of p.out) assert.match(l, /: (cats|dogs) [01]\.\d{4}$/);
  const e = await run(['eval', '--checkpoint', good, '--data', data, '--batch-size=4', '--workers', '0', '--crop_pct', '0.9']);
  assert.is(e.code, 0, e.err);
  assert.match(e.out[e.out.length - 1], /^accuracy: \d\.\d{4}$/);
  const cases: [string[], RegExp][] = [
    [['predict', '--checkpoint', good, '--bogus', '1', images[0]], /unknown option --bogus \(expected --checkpoint, --attention-map, --batch-size, --crop-pct\)/],
    [['predict', '--checkpoint', '--batch-size', '2', images[0]], /--checkpoint expects a value/],
    [['predict', '--checkpoint', good], /predict needs at least one image file/],
    [['predict', images[0]], /predict needs --checkpoint DIR/],
    [['eval', '--checkpoint', good, '--data', data, '--workers', '-1'], /--workers: expected an integer >= 0, got "-1"/],
    [['eval', '--checkpoint', good, '--data', data, '--batch-size', '0'], /--batch-size: expected a positive integer, got "0"/],
    [['eval', '--checkpoint', good, data], /eval takes no positional arguments/],
  ];
  for (const [argv, pattern] of cases) {
    const r = await run(argv);
    assert.is(r.code, 2, `${argv.join(' ')}: ${r.err}`);
    assert.match(r.err, pattern);
  }
});

test('NaN weights: predict and eval fail with an error naming the checkpoint (issue 12.6)', async () => {
  const dir = await checkpoint('nan', { edit: (t) => { t.get('vit.layernorm.weight')!.data[3] = NaN; } });
  for (const argv of [['predict', '--checkpoint', dir, ...images], ['eval', '--checkpoint', dir, '--data', data, '--workers', '0']]) {
    const r = await run(argv);
    assert.is(r.code, 1, `${argv[0]}: ${r.err}`);
    assert.ok(r.err.includes(dir), `${argv[0]} names the checkpoint: ${r.err}`);
    assert.match(r.err, /non-finite logits \(NaN\)/);
    assert.not.match(r.out.join('\n'), /accuracy|cats|dogs/, `${argv[0]} reports no result`);
  }
});

test('no classifier head: predict and eval refuse it, fromPretrained (fine-tuning) still loads it (issue 12.7)', async () => {
  const bare = await checkpoint('bare', { bare: true });
  const headless = await checkpoint('headless', { edit: (t) => { t.delete('classifier.weight'); t.delete('classifier.bias'); } });
  for (const dir of [bare, headless]) {
    for (const argv of [['predict', '--checkpoint', dir, images[0]], ['eval', '--checkpoint', dir, '--data', data, '--workers', '0']]) {
      const r = await run(argv);
      assert.is(r.code, 1, `${argv.join(' ')}: ${r.err}`);
      assert.ok(r.err.includes(dir), r.err);
      assert.match(r.err, /no classifier head \(classifier\.weight, classifier\.bias\)/);
      assert.match(r.err, /--pretrained/);
      assert.is(r.out.length, 0, r.out.join('\n'));
    }
    const m = await ViTForImageClassification.fromPretrained(dir, { warn: false }); // a fresh head to train
    assert.equal(m.classifier.weight.shape, [2, TINY.hidden_size]);
    m.dispose();
  }
});

test('weights that contradict config.json: the tensor, both shapes, and nothing the command line cannot do (issue 12.8)', async () => {
  const dir = await checkpoint('mismatch', { config: { id2label: { 0: 'cats', 1: 'dogs', 2: 'foxes' } } });
  for (const argv of [['predict', '--checkpoint', dir, images[0]], ['eval', '--checkpoint', dir, '--data', data]]) {
    const r = await run(argv);
    assert.is(r.code, 1, r.err);
    assert.match(r.err, /model\.safetensors does not fit .*config\.json: .*tensor "classifier\.weight" has shape \[2,32\], the config asks for \[3,32\]/);
    assert.ok(r.err.includes(join(dir, 'model.safetensors')), r.err);
    assert.not.match(r.err, /ignoreMismatchedSizes/);
  }
});

test.run();
