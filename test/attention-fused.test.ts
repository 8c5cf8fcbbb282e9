// Every attention variant (unfused, fused-tiles, fused-texture), each forced on the test device: parity
// with the float64 reference at odd shapes, with and without dropout and a head mask, the same dropout
// mask and returned probabilities as the unfused path, finite differences, run-to-run bit equality, the
// texture kernels' batch runs, and the fallbacks to the unfused path.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Tensor, tidy } from '../src/tensor.ts';
import { attention, attentionKernel, attentionScoreBytes, fusedAttentionConfig, type AttentionOptions } from '../src/ops/attention.ts';
import { attentionForwardRef, attentionBackwardRef } from '../src/ref/attention.ts';
import { ATTENTION_VARIANTS, setKernelVariants, type AttentionVariant } from '../src/ops/variants.ts';
import { Device } from '../src/gpu/device.ts';
import { assertClose, gradCheck, randn, setupDevice } from './helpers.ts';

const fwdTol = { relL2: 1e-5, nmax: 1e-4 };
const gradTol = { relL2: 5e-5, nmax: 5e-4 };

interface Case { batch: number; seq: number; heads: number; headDim: number }
type Opts = Omit<AttentionOptions, 'heads' | 'returnProbs'>;
const name = (c: Case) => `B${c.batch} S${c.seq} H${c.heads} hd${c.headDim}`;

/** Runs `fn` with the attention variant forced on the default device, restoring the previous one. */
async function withVariant<T>(variant: AttentionVariant, fn: () => Promise<T>): Promise<T> {
  const device = await setupDevice();
  const before = setKernelVariants(device, { attention: variant });
  try {
    return await fn();
  } finally {
    setKernelVariants(device, before);
  }
}

interface Outputs { context: Float32Array; probs: Float32Array; dq: Float32Array; dk: Float32Array; dv: Float32Array }

/** Forward (with the probabilities) and backward on seeded data with the current variant. */
async function run(c: Case, opts: Opts, seed = 1): Promise<Outputs> {
  const { batch: B, seq: S, heads: H, headDim: D } = c;
  const n = B * S * H * D;
  const shape = [B, S, H * D];
  return tidy(async () => {
    const [q, k, v] = [0, 1, 2].map((i) => Tensor.fromArray(randn(n, seed + i), shape, { requiresGrad: true }));
    const { context, probs } = attention(q, k, v, { heads: H, ...opts, returnProbs: true });
    context.backward(Tensor.fromArray(randn(n, seed + 3), shape));
    const out = {
      context: await context.toArray(), probs: await probs!.toArray(),
      dq: await q.grad!.toArray(), dk: await k.grad!.toArray(), dv: await v.grad!.toArray(),
    };
    for (const t of [q, k, v]) t.grad!.dispose();
    return out;
  });
}

/** Every output of `b` bit for bit equal to `a`'s, else an error naming the first element that is not. */
function assertSameBits(a: Outputs, b: Outputs, label: string, what: string): void {
  for (const key of Object.keys(a) as (keyof Outputs)[]) {
    const i = a[key].findIndex((x, j) => !Object.is(x, b[key][j]));
    if (i >= 0) throw new Error(`${label} ${key}: ${what} differs at [${i}] (${a[key][i]} vs ${b[key][i]})`);
  }
}

async function checkAgainstRef(variant: AttentionVariant, c: Case, opts: Opts = {}, seed = 1): Promise<void> {
  const n = c.batch * c.seq * c.heads * c.headDim;
  const [q, k, v, dc] = [0, 1, 2, 3].map((i) => randn(n, seed + i));
  const headMask = opts.headMask instanceof Tensor ? [...(await opts.headMask.toArray())] : opts.headMask;
  const shape = { ...c, scale: opts.scale, headMask, dropout: opts.dropout, seed: opts.seed };
  const ref = attentionForwardRef(q, k, v, shape);
  const grads = attentionBackwardRef(q, k, v, dc, shape);
  const got = await withVariant(variant, () => run(c, opts, seed));
  const label = `${variant} ${name(c)}${opts.dropout ? ' dropout' : ''}${opts.headMask ? ' head mask' : ''}`;
  assertClose(`${label} context`, got.context, ref.context, fwdTol);
  assertClose(`${label} probs`, got.probs, ref.probs, fwdTol);
  assertClose(`${label} dq`, got.dq, grads.dq, gradTol);
  assertClose(`${label} dk`, got.dk, grads.dk, gradTol);
  assertClose(`${label} dv`, got.dv, grads.dv, gradTol);
}

const masked = (heads: number): Opts => ({ dropout: 0.2, seed: 5, headMask: Array.from({ length: heads }, (_, h) => [1.5, 0, 0.5][h % 3]) });

// Head dims 8, 10, 24, 64 (rows of 2, 2.5, 6 and 16 texels; widths H*hd not multiples of 4 take the
// texture kernels' pack path, the others their copy path). The workgroup-tile kernels are slow on
// lavapipe (barriers): small shapes, which still cross their 64-row and 16-key blocks.
const cases: Record<Exclude<AttentionVariant, 'unfused'>, Case[]> = {
  'fused-texture': [
    { batch: 2, seq: 1, heads: 3, headDim: 8 },
    { batch: 2, seq: 17, heads: 3, headDim: 10 },
    { batch: 1, seq: 197, heads: 2, headDim: 24 },
    { batch: 1, seq: 577, heads: 1, headDim: 64 },
    { batch: 1, seq: 785, heads: 1, headDim: 10 },
  ],
  'fused-tiles': [
    { batch: 2, seq: 1, heads: 3, headDim: 8 },
    { batch: 2, seq: 17, heads: 3, headDim: 10 },
    { batch: 1, seq: 70, heads: 2, headDim: 24 },
    { batch: 1, seq: 33, heads: 1, headDim: 64 },
  ],
};

for (const [variant, list] of Object.entries(cases) as [AttentionVariant, Case[]][]) {
  test(`${variant}: forward, probabilities and gradients match the reference, with and without dropout and head mask`, async () => {
    for (const [i, c] of list.entries()) {
      await checkAgainstRef(variant, c, {}, 1 + i);
      await checkAgainstRef(variant, c, masked(c.heads), 11 + i);
    }
  });
}

test('unfused (the reference path, forced): matches the reference with and without dropout and head mask', async () => {
  await checkAgainstRef('unfused', { batch: 2, seq: 17, heads: 3, headDim: 10 });
  await checkAgainstRef('unfused', { batch: 1, seq: 197, heads: 2, headDim: 24 }, masked(2));
});

test('fused variants: the same dropout mask and probabilities as the unfused path', async () => {
  const c = { batch: 2, seq: 40, heads: 3, headDim: 24 };
  const opts = { dropout: 0.3, seed: 1234, headMask: [1, 0.5, 2] };
  const want = await withVariant('unfused', () => run(c, opts));
  for (const variant of ['fused-texture', 'fused-tiles'] as const) {
    const got = await withVariant(variant, () => run(c, opts));
    const differ = got.probs.findIndex((x, i) => (x === 0) !== (want.probs[i] === 0));
    if (differ >= 0) throw new Error(`${variant}: dropout keeps another set of elements (first at [${differ}])`);
    assertClose(`${variant} probs vs unfused`, got.probs, want.probs, { relL2: 1e-6, nmax: 1e-6 });
    assertClose(`${variant} context vs unfused`, got.context, want.context, fwdTol);
  }
});

test('fused variants: finite differences (plain, and with dropout, head mask and scale)', async () => {
  const [B, S, H, D] = [2, 5, 2, 3];
  const n = B * S * H * D;
  const inputs = [1, 2, 3].map((s) => ({ data: randn(n, s), shape: [B, S, H * D] }));
  for (const variant of ['fused-texture', 'fused-tiles'] as const) {
    await withVariant(variant, async () => {
      await gradCheck(`${variant} attention`, inputs, ([q, k, v]) => attention(q, k, v, { heads: H }).context);
      await gradCheck(`${variant} attention masked`, inputs, ([q, k, v]) =>
        attention(q, k, v, { heads: H, dropout: 0.3, seed: 9, headMask: [1.5, 0.5], scale: 0.8 }).context);
    });
  }
});

test('every variant: the same inputs twice give the same bits', async () => {
  const c = { batch: 2, seq: 37, heads: 2, headDim: 24 };
  for (const variant of ATTENTION_VARIANTS) {
    const [a, b] = await withVariant(variant, async () => [await run(c, masked(2)), await run(c, masked(2))]);
    assertSameBits(a, b, variant, 'run 2');
  }
});

test('fused-texture: the last, partial block of rows (its own pipeline) gives the whole-block pipeline\'s bits', async () => {
  // last blocks of 1 row (S = 65: after 1 block of 64 queries forward, 2 of 32 backward), 5 rows (S = 69) and
  // 8 rows (S = 40, backward only), with and without dropout and head mask
  const cases: [Case, Opts][] = [
    [{ batch: 1, seq: 65, heads: 2, headDim: 8 }, {}],
    [{ batch: 2, seq: 69, heads: 3, headDim: 10 }, masked(3)],
    [{ batch: 1, seq: 40, heads: 2, headDim: 24 }, masked(2)],
  ];
  const before = fusedAttentionConfig.tailPipeline;
  try {
    for (const [c, opts] of cases) {
      fusedAttentionConfig.tailPipeline = true;
      const split = await withVariant('fused-texture', () => run(c, opts));
      fusedAttentionConfig.tailPipeline = false;
      const whole = await withVariant('fused-texture', () => run(c, opts));
      assertSameBits(split, whole, name(c), 'the tail pipeline');
    }
  } finally {
    fusedAttentionConfig.tailPipeline = before;
  }
});

test('fused-texture: batches split into runs that fit the texture height', async () => {
  const before = fusedAttentionConfig.textureRows;
  fusedAttentionConfig.textureRows = 102; // the H * S head rows of two items of H = 3, S = 17 per texture
  try {
    const device = await setupDevice();
    const run = (c: Case) => attentionKernel(device, c, 'fused-texture');
    const packed = { batch: 5, seq: 17, heads: 3, headDim: 10 }; // runs of 2, 2, 1
    const copied = { batch: 3, seq: 20, heads: 4, headDim: 16 }; // H * S = 80: runs of 1
    if (run(packed) !== 'fused-texture' || run(copied) !== 'fused-texture') throw new Error('fused-texture does not run here');
    await checkAgainstRef('fused-texture', packed, masked(3));
    await checkAgainstRef('fused-texture', copied);
    if (run({ ...packed, seq: 35 }) !== 'unfused') throw new Error('one item past the texture height should run unfused');
  } finally {
    fusedAttentionConfig.textureRows = before;
  }
});

test('fused variants fall back to the unfused path: head dims past 64, texture kernels without subgroups', async () => {
  const device = await setupDevice();
  for (const variant of ['fused-texture', 'fused-tiles'] as const) {
    if (attentionKernel(device, { seq: 197, heads: 12, headDim: 64 }, variant) !== variant) throw new Error(`${variant} does not run at hd 64`);
    if (attentionKernel(device, { seq: 197, heads: 12, headDim: 65 }, variant) !== 'unfused') throw new Error(`${variant} runs at hd 65`);
  }
  await checkAgainstRef('fused-texture', { batch: 1, seq: 9, heads: 1, headDim: 72 });
  const bare = await Device.create({ disableFeatures: ['subgroups'] });
  try {
    const vitB = { seq: 197, heads: 12, headDim: 64 };
    if (attentionKernel(bare, vitB, 'fused-texture') !== 'unfused') throw new Error('fused-texture chosen without subgroups');
    if (attentionKernel(bare, vitB, 'fused-tiles') !== 'fused-tiles') throw new Error('fused-tiles needs no subgroups');
  } finally {
    bare.destroy();
  }
});

test('today\'s path hands over to a fused kernel where its score buffer would pass the binding limit', async () => {
  const device = await setupDevice();
  // the same adapter, with a 1 MiB binding limit (ViT-B/16 @384 at batch 8 needs 142 MB against lavapipe's 128 MiB)
  const small = {
    isCPU: device.isCPU, description: device.description, features: device.features, subgroupMinSize: device.subgroupMinSize,
    gpu: { limits: { ...device.gpu.limits, maxStorageBufferBindingSize: 1 << 20, maxTextureDimension2D: device.gpu.limits.maxTextureDimension2D } },
  } as unknown as Device;
  const fused = device.isCPU ? 'fused-texture' : 'fused-tiles';
  const fits = { batch: 1, seq: 65, heads: 4, headDim: 32 }; // 65 x 128 floats per head: well under 1 MiB
  const big = { batch: 8, seq: 577, heads: 12, headDim: 64 };
  assert.ok(attentionScoreBytes(small, fits) <= 1 << 20);
  assert.ok(attentionScoreBytes(small, big) > 1 << 20);
  assert.is(attentionKernel(small, fits, 'unfused'), 'unfused');
  assert.is(attentionKernel(small, big, 'unfused'), fused);
  assert.is(attentionKernel(small, { ...big, headDim: 72 }, 'unfused'), 'unfused'); // no fused kernel runs at hd 72
  assert.is(attentionKernel(device, big, 'unfused'), attentionScoreBytes(device, big) > device.gpu.limits.maxStorageBufferBindingSize ? fused : 'unfused');
});

test('fused variants: gradients only where needed, nothing leaks', async () => {
  const [B, S, H, D] = [2, 17, 3, 10];
  const E = H * D;
  const c = { batch: B, seq: S, heads: H, headDim: D };
  const q = randn(B * S * E, 21), k = randn(B * S * E, 22), v = randn(B * S * E, 23), dc = randn(B * S * E, 24);
  const grads = attentionBackwardRef(q, k, v, dc, { ...c, dropout: 0.2, seed: 3 });
  for (const variant of ['fused-texture', 'fused-tiles'] as const) {
    await withVariant(variant, async () => {
      const live = Tensor.liveCount;
      await tidy(async () => {
        const tq = Tensor.fromArray(q, [B, S, E]);
        const tk = Tensor.fromArray(k, [B, S, E], { requiresGrad: true });
        const tv = Tensor.fromArray(v, [B, S, E]);
        const { context, probs } = attention(tq, tk, tv, { heads: H, dropout: 0.2, seed: 3 });
        if (probs !== null) throw new Error('probs returned without returnProbs');
        context.backward(Tensor.fromArray(dc, [B, S, E]));
        if (tq.grad || tv.grad) throw new Error('gradient for an input that does not require it');
        assertClose(`${variant} dk alone`, await tk.grad!.toArray(), grads.dk, gradTol);
        tk.grad!.dispose();
        const plain = attention(tq, Tensor.fromArray(k, [B, S, E]), tv, { heads: H, headMask: [1, 1, 0] });
        if (plain.context.gradFn || plain.context.requiresGrad) throw new Error('recorded without inputs needing grad');
        await plain.context.toArray();
      });
      if (Tensor.liveCount !== live) throw new Error(`${variant}: ${Tensor.liveCount - live} tensors leaked`);
    });
  }
});

test.run();
