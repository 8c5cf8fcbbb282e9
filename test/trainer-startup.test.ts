// The trainer's checks before it trains, and --resume's bookkeeping: an out_dir it cannot write,
// a batch too large for the device (with the napkin sizes measured against real buffers), nothing left
// behind after a start-up error or a NaN stop, --resume with another batch_size, a checkpoint missing
// a file. Built-in set and a tiny model; each run takes a second or two.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../examples/catsvdogs.ts';

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

/** Every file under dir with its content hash (to show nothing changed). */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const e of readdirSync(d)) {
      const p = join(d, e);
      if (statSync(p).isDirectory()) walk(p);
      else out[p.slice(dir.length)] = createHash('sha1').update(readFileSync(p)).digest('hex');
    }
  };
  walk(dir);
  return out;
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

test.run();
