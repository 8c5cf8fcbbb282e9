// bench/ end to end at tiny sizes: both scripts run, validate their kernels and print the JSON line
// the issue specifies (the numbers themselves are measured by running the benches, not here).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const root = fileURLToPath(new URL('..', import.meta.url));

/** Runs a bench script with --json (its autotune cache in a temporary folder); returns the last line, parsed. */
async function bench(script: string, args: string[]): Promise<Record<string, any>> {
  const cache = mkdtempSync(join(tmpdir(), 'vitcats-bench-'));
  try {
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', join(root, 'bench', script), ...args, '--json'], {
      cwd: root, env: { ...process.env, VITCATS_CACHE_DIR: cache }, maxBuffer: 16 << 20,
    });
    return JSON.parse(stdout.trim().split('\n').pop()!);
  } finally {
    rmSync(cache, { recursive: true, force: true });
  }
}

test('bench:vit: a tiny ViT trains and infers; JSON fields, every dispatch in a named phase, memory equal', async () => {
  const r = await bench('vit.ts', ['--image', '16', '--patch', '8', '--hidden', '32', '--layers', '2', '--heads', '2', '--mlp', '64',
    '--batch', '2', '--steps', '2', '--infer', '1']);
  for (const key of ['train_img_s', 'infer_img_s', 'first_step_s', 'peak_gpu_bytes']) {
    assert.ok(Number.isFinite(r[key]) && r[key] > 0, `${key} = ${r[key]}`);
  }
  assert.is(r.config.hidden, 32);
  assert.ok(r.memory_equal, 'memory after the last step equals memory after step 2');
  assert.ok(Number.isFinite(r.last_loss), `loss ${r.last_loss}`);
  if (r.adapter.timestamps) {
    const phases = Object.keys(r.train_phases_ms);
    for (const p of ['MLP matmuls (fc1, fc2)', 'attention matmuls (q, k, v, out)', 'attention core (QK^T, softmax, PV)', 'optimizer (AdamW)']) {
      assert.ok(phases.includes(p), `phase "${p}" in ${phases}`);
    }
    assert.not.ok(phases.some((p) => p.startsWith('other (')), `unclassified dispatches: ${phases}`);
  }
});

test('bench:kernels: the chosen cases are validated and timed; JSON rows as specified', async () => {
  const r = await bench('kernels.ts', ['--quick', '--only', 'q/k/v/out', '--reps', '1']);
  const rows = r.kernels as Record<string, any>[];
  assert.ok(rows.length >= 4, `${rows.length} rows`); // linear fwd and bwd, both variants
  for (const k of rows) {
    for (const key of ['name', 'variant', 'shape', 'ms', 'gflops', 'gbps']) assert.ok(key in k, `${k.name}: ${key}`);
    assert.match(k.check, /^ok/, `${k.name} ${k.variant}: ${k.check}`);
    assert.ok(k.ms > 0 && k.gflops > 0, `${k.name} ${k.variant}: ${k.ms} ms, ${k.gflops} GFLOP/s`);
  }
  assert.ok(r.ceilings.gflops > 0 && r.ceilings.gbps > 0);
});

test.run();
