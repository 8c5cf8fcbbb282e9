// A checkpoint replacement killed at every filesystem step: every reader (fromPretrained, predict /
// eval's loadClassifier, --resume) must still find a complete checkpoint, the old or the new one.
//
// The writer is the trainer itself. While it saves last/, each filesystem call of node:fs/promises
// that touches last/ or its hidden siblings is traced and, right after it returns, out_dir is copied
// away: a SIGKILL after that call would leave exactly that tree behind (the kernel keeps what was
// done; nothing of the process runs any more), so the copies are the states a crash can leave.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import fsp from 'node:fs/promises';
import { syncBuiltinESMExports } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../src/cli.ts';
import { ViTForImageClassification } from '../src/vit/modeling.ts';
import { parseSafetensors } from '../src/io/safetensors.ts';
import { loadClassifier } from '../src/train/inference.ts';
import { readTrainerState, recoverCheckpointDir } from '../src/train/checkpoint.ts';
import { findCheckpointDir } from '../src/io/files-node.ts';

const root = mkdtempSync(join(tmpdir(), 'checkpoint-replace-'));
const out = join(root, 'run');
const params = join(root, 'params.json');
writeFileSync(params, JSON.stringify({
  synthetic: { per_class: 6, size: 16 }, train_dir: join(root, 'syn'), out_dir: out, cache_dir: join(root, 'cache'),
  model: { preset: 'vit-nano-32', image_size: 16, hidden_size: 16, num_hidden_layers: 1, num_attention_heads: 2, intermediate_size: 32 },
  epochs: 1, batch_size: 8, val_split: 0.25, workers: 0,
}));

const quiet = { out: () => {}, err: () => {}, progress: null };
/** A path of last/'s replacement: last itself, something in it, or one of its hidden siblings. */
const touchesLast = (p: unknown) => typeof p === 'string' && p.startsWith(`${out}/`) && /^\/\.?last(\/|\.|$)/.test(p.slice(out.length));

/** Runs `fn` with every last/-touching call of node:fs/promises followed by a copy of out_dir. */
async function traced(name: string, fn: () => Promise<unknown>): Promise<string[]> {
  const states: string[] = [];
  const api = fsp as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>;
  const names = ['mkdir', 'open', 'rename', 'rm', 'rmdir', 'unlink', 'symlink', 'writeFile', 'copyFile', 'cp'];
  const saved = Object.fromEntries(names.map((n) => [n, api[n]]));
  for (const n of names) {
    api[n] = async (...args: unknown[]) => {
      const r = await saved[n](...args);
      const writes = n !== 'open' || /[wax+]/.test(String(args[1] ?? 'r'));
      if (writes && args.some(touchesLast)) {
        const copy = join(root, `${name}-${states.length}-${n}`);
        cpSync(out, copy, { recursive: true, verbatimSymlinks: true });
        states.push(copy);
      }
      return r;
    };
  }
  syncBuiltinESMExports();
  try {
    await fn();
  } finally {
    Object.assign(api, saved);
    syncBuiltinESMExports();
  }
  return states;
}

const weightsOf = (dir: string) => parseSafetensors(readFileSync(join(dir, 'model.safetensors')), dir).tensors.get('classifier.weight')!.data as Float32Array;
const same = (a: ArrayLike<number>, b: ArrayLike<number>) => a.length === b.length && Array.from(a).every((x, i) => x === b[i]);

/** Which checkpoint (index into `versions`) a loaded model holds. */
async function which(model: ViTForImageClassification, versions: Float32Array[]): Promise<number> {
  const w = await model.classifier.weight.toArray();
  const i = versions.findIndex((v) => same(w, v));
  assert.ok(i >= 0, 'the loaded weights are neither the old nor the new checkpoint');
  return i;
}

/** Runs every reader on a crash state; returns which version they saw (-1: no checkpoint yet). */
async function readAll(state: string, versions: Float32Array[], firstSave: boolean): Promise<number> {
  const last = join(state, 'last');
  let seen: number;
  try {
    const m = await ViTForImageClassification.fromPretrained(last, { warn: false });
    try { seen = await which(m, versions); } finally { m.dispose(); }
  } catch (e) {
    // before the very first checkpoint is complete there is none to load, and the message says so
    assert.ok(firstSave, `${state}: fromPretrained failed: ${(e as Error).message}`);
    assert.match((e as Error).message, /last/);
    const logs: string[] = [];
    const code = await main(['--params', params, '--out-dir', state, '--resume'], { out: (s) => logs.push(s), err: (s) => logs.push(s), progress: null });
    assert.is(code, 2);
    assert.match(logs.join('\n'), /nothing to resume: .* has no checkpoint last\//);
    return -1;
  }
  const c = await loadClassifier(last);
  try {
    assert.is(await which(c.model, versions), seen, `${state}: predict/eval load another checkpoint than fromPretrained`);
    assert.is(c.note, null, `${state}: preprocessor_config.json missing: ${c.note}`);
  } finally {
    c.model.dispose();
  }
  const before = readTrainerState(c.dir).epoch;
  const logs: string[] = [];
  const code = await main(['--params', params, '--out-dir', state, '--resume', '--epochs', String(versions.length)],
    { out: (s) => logs.push(s), err: (s) => logs.push(s), progress: null });
  assert.is(code, 0, `${state}: --resume failed:\n${logs.join('\n')}`);
  assert.is(before, seen + 1, `${state}: --resume would start from another checkpoint`);
  assert.is(readTrainerState(last).epoch, versions.length);
  assert.equal(readdirSync(state).filter((f) => f.startsWith('.')), [], `${state}: leftovers after --resume`);
  return seen;
}

test('last/ replaced by the trainer: a crash after any filesystem step leaves a complete checkpoint', async () => {
  const first = await traced('first', () => main(['--params', params], quiet));
  const v1 = weightsOf(join(out, 'last'));
  const second = await traced('second', () => main(['--params', params, '--resume', '--epochs', '2'], quiet));
  const v2 = weightsOf(join(out, 'last'));
  assert.ok(!same(v1, v2), 'epoch 2 changed the weights');
  assert.ok(first.length >= 8 && second.length >= 10, `traced ${first.length} and ${second.length} steps`);
  assert.ok(second.some((s) => !existsSync(join(s, 'last'))), 'no state between the two renames');

  // the first save: nothing, then epoch 1 (never lost once complete)
  const seenFirst: number[] = [];
  for (const s of first) seenFirst.push(await readAll(s, [v1], true));
  assert.is(seenFirst[seenFirst.length - 1], 0);
  for (let i = 1; i < seenFirst.length; i++) assert.ok(seenFirst[i] >= seenFirst[i - 1], `state ${i} went back`);
  // replacing epoch 1 by epoch 2: old, then new, never nothing
  const seenSecond: number[] = [];
  for (const s of second) seenSecond.push(await readAll(s, [v1, v2], false));
  assert.is(seenSecond[0], 0);
  assert.is(seenSecond[seenSecond.length - 1], 1);
  for (let i = 1; i < seenSecond.length; i++) assert.ok(seenSecond[i] >= seenSecond[i - 1], `state ${i} went back`);
  assert.ok(existsSync(join(out, 'last', 'config.json')));
});

test('leftovers beside a missing folder: only a complete one stands in, and recovery puts it back', () => {
  const dir = mkdtempSync(join(root, 'leftovers-'));
  const folder = (name: string, files: string[]) => {
    mkdirSync(join(dir, name));
    for (const f of files) writeFileSync(join(dir, name, f), f);
    return join(dir, name);
  };
  const last = join(dir, 'last');
  const partialNew = folder('.last.tmp-1-aa', ['model.safetensors']); // config.json not written yet
  const old = folder('.last.old-1-bb', ['model.safetensors', 'config.json']);
  assert.is(findCheckpointDir(last), old);
  const complete = folder('.last.tmp-2-cc', ['model.safetensors', 'config.json']);
  assert.is(findCheckpointDir(last), complete); // the new one wins once complete
  assert.ok(recoverCheckpointDir(last));
  assert.equal(readdirSync(dir), ['last']);
  assert.is(readFileSync(join(last, 'config.json'), 'utf8'), 'config.json');
  assert.ok(!existsSync(partialNew));
  // a half-removed old folder (config.json goes first) is never taken for a checkpoint
  const other = join(dir, 'best');
  folder('.best.old-1-dd', ['model.safetensors']);
  assert.is(findCheckpointDir(other), other);
  assert.ok(!recoverCheckpointDir(other));
  assert.equal(readdirSync(dir), ['last']);
});

test.run();
