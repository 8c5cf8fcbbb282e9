// Matmul and attention variant autotune: disk cache round trip (atomic JSON file), cache hits skip
// measuring, the environment's variant wins, and a real measurement picks one of the variants and sets it.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setupDevice } from './helpers.ts';
import {
  UNFUSED_HANDICAP, attentionAutotuneKey, attentionCandidates, autotune, autotuneAttention, autotuneKey, autotuneMatmul, lastAttentionAutotune, lastAutotune,
  type AttentionAutotuneEntry, type AutotuneCache, type AutotuneEntry,
} from '../src/ops/autotune.ts';
import { nodeAutotuneCache } from '../src/ops/autotune-cache-node.ts';
import { ATTENTION_VARIANTS, LONG_SEQUENCE, MATMUL_VARIANTS, envAttentionVariant, kernelVariants, setKernelVariants } from '../src/ops/variants.ts';
import { attentionKernel } from '../src/ops/attention.ts';

const dir = mkdtempSync(join(tmpdir(), 'vitcats-autotune-'));

const entry = (variant: 'register' | 'shared'): AutotuneEntry => ({
  matmulVariant: variant, ms: { register: 1, shared: 2 }, shapes: ['8x8x8'], measuredAt: new Date(0).toISOString(),
});

test('node cache: write then read, atomically, keeping other entries', () => {
  const path = join(dir, 'sub', 'autotune.json');
  const cache = nodeAutotuneCache(path);
  assert.is(cache.read('a'), null);
  cache.write('a', entry('shared'));
  cache.write('b', entry('register'));
  assert.is((cache.read('a') as AutotuneEntry).matmulVariant, 'shared');
  assert.is((cache.read('b') as AutotuneEntry).matmulVariant, 'register');
  assert.equal(readdirSync(join(dir, 'sub')), ['autotune.json']); // no temp file left behind
});

test('node cache: a corrupt file reads as empty and is replaced on write', () => {
  const path = join(dir, 'corrupt.json');
  writeFileSync(path, '{ not json');
  const cache = nodeAutotuneCache(path);
  assert.is(cache.read('a'), null);
  cache.write('a', entry('register'));
  assert.is(JSON.parse(readFileSync(path, 'utf8')).entries.a.matmulVariant, 'register');
});

type Entry = AutotuneEntry | AttentionAutotuneEntry;

function memoryCache(initial: Record<string, Entry> = {}): AutotuneCache & { writes: number; data: Record<string, Entry> } {
  const data = { ...initial };
  return {
    data, writes: 0,
    read(key) { return data[key] ?? null; },
    write(key, e) { data[key] = e; this.writes++; },
  };
}

test('a cache hit returns the cached variant without measuring, and sets it', async () => {
  const device = await setupDevice();
  const before = kernelVariants(device);
  try {
    const cache = memoryCache({ [autotuneKey(device)]: entry('shared') });
    const r = await autotuneMatmul(device, { cache });
    assert.is(r.source, 'cache');
    assert.is(r.matmulVariant, 'shared');
    assert.is(cache.writes, 0);
    assert.is(lastAutotune(device)?.matmulVariant, 'shared');
    assert.is(kernelVariants(device).matmul, 'shared');
  } finally {
    setKernelVariants(device, before);
  }
});

test('measuring picks a variant, stores it, and stays short', async () => {
  const device = await setupDevice();
  const before = kernelVariants(device);
  try {
    const cache = memoryCache();
    const t0 = performance.now();
    const r = await autotuneMatmul(device, { cache });
    const seconds = (performance.now() - t0) / 1000;
    assert.is(r.source, 'measured');
    assert.ok(MATMUL_VARIANTS.includes(r.matmulVariant));
    assert.is(kernelVariants(device).matmul, r.matmulVariant);
    assert.is(cache.writes, 1);
    assert.is((cache.data[r.key] as AutotuneEntry).matmulVariant, r.matmulVariant);
    // (with Mesa's shader cache cold, as on a fresh CI machine, compiling the texture kernels takes most of it)
    assert.ok(seconds < 20, `autotune took ${seconds.toFixed(1)} s`);
    // a refresh measures again even with an entry
    const again = await autotuneMatmul(device, { cache, refresh: true });
    assert.is(again.source, 'measured');
  } finally {
    setKernelVariants(device, before);
  }
});

test('VITCATS_MATMUL_VARIANT wins over the autotune, and a wrong value is an error naming it', async () => {
  const device = await setupDevice();
  const before = kernelVariants(device);
  const prev = process.env.VITCATS_MATMUL_VARIANT;
  try {
    process.env.VITCATS_MATMUL_VARIANT = 'register';
    const cache = memoryCache({ [autotuneKey(device)]: entry('shared') });
    assert.is(await autotune(device, { cache }), null); // never ran
    assert.is(cache.writes, 0);
    process.env.VITCATS_MATMUL_VARIANT = 'fast';
    try {
      await autotune(device, { cache });
      assert.unreachable('expected an error');
    } catch (e) {
      assert.match((e as Error).message, /VITCATS_MATMUL_VARIANT is "fast"; expected one of register, shared/);
    }
  } finally {
    if (prev === undefined) delete process.env.VITCATS_MATMUL_VARIANT;
    else process.env.VITCATS_MATMUL_VARIANT = prev;
    setKernelVariants(device, before);
  }
});

const attentionEntry = (variant: AttentionAutotuneEntry['attentionVariant'], long = variant): AttentionAutotuneEntry => ({
  attentionVariant: variant, attentionLongVariant: long, ms: { [variant]: 1 }, msLong: { [long]: 1 },
  shapes: ['B1 S8 H1 hd8', 'B1 S400 H1 hd8'], measuredAt: new Date(0).toISOString(),
});

test('attention: the candidates are per adapter, a cache hit sets its variant without measuring', async () => {
  const device = await setupDevice();
  const before = kernelVariants(device);
  try {
    const candidates = attentionCandidates(device);
    assert.equal(candidates, ['unfused', device.isCPU ? 'fused-texture' : 'fused-tiles']);
    for (const variant of candidates) {
      const other = candidates.find((c) => c !== variant)!;
      const cache = memoryCache({ [attentionAutotuneKey(device)]: attentionEntry(variant, other) });
      const r = await autotuneAttention(device, { cache });
      assert.is(r.source, 'cache');
      assert.is(cache.writes, 0);
      assert.is(kernelVariants(device).attention, variant);
      assert.is(kernelVariants(device).attentionLong, other);
      assert.is(lastAttentionAutotune(device)?.attentionVariant, variant);
      // the length picks the variant: up to LONG_SEQUENCE tokens one, past it the other
      assert.is(attentionKernel(device, { seq: LONG_SEQUENCE, heads: 2, headDim: 8 }), variant);
      assert.is(attentionKernel(device, { seq: LONG_SEQUENCE + 1, heads: 2, headDim: 8 }), other);
    }
    // an entry of before the per-length choice is measured again, not taken
    const old = memoryCache({ [attentionAutotuneKey(device)]: { ...attentionEntry('unfused'), attentionLongVariant: undefined } as never });
    assert.is((await autotuneAttention(device, { cache: old })).source, 'measured');
    // the matmul and attention choices live under different keys
    assert.is.not(attentionAutotuneKey(device), autotuneKey(device));
  } finally {
    setKernelVariants(device, before);
  }
});

test('attention: measuring times the candidates (a cached non-candidate does not count), keeps the faster, and stays short', async () => {
  const device = await setupDevice();
  const before = kernelVariants(device);
  try {
    const foreign = ATTENTION_VARIANTS.find((v) => !attentionCandidates(device).includes(v))!;
    const cache = memoryCache({ [attentionAutotuneKey(device)]: attentionEntry(foreign) });
    const t0 = performance.now();
    const r = await autotuneAttention(device, { cache });
    const seconds = (performance.now() - t0) / 1000;
    assert.is(r.source, 'measured');
    assert.ok(attentionCandidates(device).includes(r.attentionVariant));
    const live = attentionCandidates(device).filter((v) => !r.abandoned?.includes(v));
    // the fastest, where today's path pays a 10 % handicap against the fused kernel
    const cost = (ms: Partial<Record<string, number>>, v: string) => ms[v]! * (v === 'unfused' ? UNFUSED_HANDICAP : 1);
    assert.is(cost(r.ms, r.attentionVariant), Math.min(...live.map((v) => cost(r.ms, v))));
    assert.is(cost(r.msLong, r.attentionLongVariant), Math.min(...live.map((v) => cost(r.msLong, v))));
    assert.is(kernelVariants(device).attention, r.attentionVariant);
    assert.is(kernelVariants(device).attentionLong, r.attentionLongVariant);
    assert.is((cache.data[r.key] as AttentionAutotuneEntry).attentionVariant, r.attentionVariant);
    assert.ok(seconds < 30, `attention autotune took ${seconds.toFixed(1)} s`);
  } finally {
    setKernelVariants(device, before);
  }
});

test('VITCATS_ATTENTION_VARIANT: autotune leaves attention alone, and a wrong value is an error naming it', async () => {
  const device = await setupDevice();
  const before = kernelVariants(device);
  const prev = process.env.VITCATS_ATTENTION_VARIANT;
  try {
    process.env.VITCATS_ATTENTION_VARIANT = 'fused-tiles';
    assert.is(envAttentionVariant(), 'fused-tiles');
    const cache = memoryCache({ [autotuneKey(device)]: entry('register'), [attentionAutotuneKey(device)]: attentionEntry('unfused') });
    setKernelVariants(device, { attention: 'fused-tiles' });
    const r = await autotune(device, { cache });
    assert.is(r?.attention, undefined);
    assert.is(kernelVariants(device).attention, 'fused-tiles');
    process.env.VITCATS_ATTENTION_VARIANT = 'flash';
    assert.throws(() => envAttentionVariant(), /VITCATS_ATTENTION_VARIANT is "flash"; expected one of unfused, fused-tiles, fused-texture/);
  } finally {
    if (prev === undefined) delete process.env.VITCATS_ATTENTION_VARIANT;
    else process.env.VITCATS_ATTENTION_VARIANT = prev;
    setKernelVariants(device, before);
  }
});

test.after(() => rmSync(dir, { recursive: true, force: true }));

test.run();
