import { test } from 'uvu';
import { Tensor, tidy } from '../src/tensor.ts';
import { dropout as elementwiseDropout } from '../src/ops/elementwise.ts';
import { attention, type AttentionOptions } from '../src/ops/attention.ts';
import { attentionForwardRef, attentionBackwardRef, type AttentionRefShape } from '../src/ref/attention.ts';
import { assertClose, gradCheck, randn } from './helpers.ts';
import { Device } from '../src/gpu/device.ts';

const fwdTol = { relL2: 1e-5, nmax: 1e-4 };
const gradTol = { relL2: 5e-5, nmax: 5e-4 };

interface Case { batch: number; seq: number; heads: number; headDim: number }

/** Runs the op forward and backward on seeded data and compares everything with the float64 reference. */
async function checkAgainstRef(
  c: Case, opts: Omit<AttentionOptions, 'heads'> = {}, inputScale = 1, seed = 1, device?: Device,
): Promise<void> {
  const { batch: B, seq: S, heads: H, headDim: D } = c;
  const E = H * D;
  const n = B * S * E;
  const q = randn(n, seed, inputScale), k = randn(n, seed + 1, inputScale), v = randn(n, seed + 2), dc = randn(n, seed + 3);
  const headMask = opts.headMask instanceof Tensor ? [...(await opts.headMask.toArray())] : opts.headMask;
  const shape: AttentionRefShape = { ...c, scale: opts.scale, headMask, dropout: opts.dropout, seed: opts.seed };
  const ref = attentionForwardRef(q, k, v, shape);
  const grads = attentionBackwardRef(q, k, v, dc, shape);
  const name = `B${B} S${S} H${H} hd${D}`;
  await tidy(async () => {
    const tq = Tensor.fromArray(q, [B, S, E], { requiresGrad: true, device });
    const tk = Tensor.fromArray(k, [B, S, E], { requiresGrad: true, device });
    const tv = Tensor.fromArray(v, [B, S, E], { requiresGrad: true, device });
    const { context, probs } = attention(tq, tk, tv, { heads: H, ...opts, returnProbs: true });
    if (probs!.shape.join() !== [B, H, S, S].join()) throw new Error(`probs shape [${probs!.shape}]`);
    if (context.shape.join() !== [B, S, E].join()) throw new Error(`context shape [${context.shape}]`);
    assertClose(`${name} context`, await context.toArray(), ref.context, fwdTol);
    assertClose(`${name} probs`, await probs!.toArray(), ref.probs, fwdTol);
    context.backward(Tensor.fromArray(dc, [B, S, E], { device }));
    assertClose(`${name} dq`, await tq.grad!.toArray(), grads.dq, gradTol);
    assertClose(`${name} dk`, await tk.grad!.toArray(), grads.dk, gradTol);
    assertClose(`${name} dv`, await tv.grad!.toArray(), grads.dv, gradTol);
    for (const t of [tq, tk, tv]) t.grad!.dispose();
  });
}

const shapes: Case[] = [
  { batch: 2, seq: 1, heads: 3, headDim: 16 },
  { batch: 2, seq: 17, heads: 3, headDim: 10 },
  { batch: 3, seq: 26, heads: 2, headDim: 24 },
  { batch: 8, seq: 26, heads: 12, headDim: 16 },
  { batch: 2, seq: 197, heads: 3, headDim: 64 },
  { batch: 1, seq: 197, heads: 2, headDim: 32 },
  { batch: 1, seq: 577, heads: 2, headDim: 32 },
  { batch: 1, seq: 577, heads: 1, headDim: 10 },
];

for (const c of shapes) {
  test(`forward and backward match the reference (B=${c.batch} S=${c.seq} H=${c.heads} hd=${c.headDim})`, () =>
    checkAgainstRef(c));
}

// Without subgroups (or off lavapipe's register variant) the products run attention.wgsl's batched_matmul
// instead of the linear layers' texture kernel.
test('device without subgroups: the batched_matmul fallback matches the reference', async () => {
  const device = await Device.create({ disableFeatures: ['subgroups'] });
  try {
    await checkAgainstRef({ batch: 2, seq: 17, heads: 3, headDim: 10 }, {}, 1, 1, device);
    await checkAgainstRef({ batch: 1, seq: 26, heads: 2, headDim: 16 }, { dropout: 0.2, seed: 5, headMask: [1.5, 0.5] }, 1, 2, device);
  } finally {
    device.destroy();
  }
});

test('large scores stay finite and accurate (max-subtracted softmax), custom scale', async () => {
  await checkAgainstRef({ batch: 2, seq: 26, heads: 2, headDim: 16 }, {}, 12);
  await checkAgainstRef({ batch: 1, seq: 17, heads: 3, headDim: 24 }, { scale: 0.37 });
});

test('head mask (array and tensor) scales heads after softmax; a zeroed head gives zero context and grads', async () => {
  const c = { batch: 2, seq: 17, heads: 3, headDim: 10 };
  await checkAgainstRef(c, { headMask: [1, 0, 0.5] });
  const maskTensor = Tensor.fromArray([0.25, 1, 0], [3]);
  await checkAgainstRef(c, { headMask: maskTensor });
  maskTensor.dispose();

  // the zeroed head is exactly zero everywhere
  await tidy(async () => {
    const { batch: B, seq: S, heads: H, headDim: D } = c;
    const E = H * D;
    const tq = Tensor.fromArray(randn(B * S * E, 5), [B, S, E], { requiresGrad: true });
    const tk = Tensor.fromArray(randn(B * S * E, 6), [B, S, E], { requiresGrad: true });
    const tv = Tensor.fromArray(randn(B * S * E, 7), [B, S, E], { requiresGrad: true });
    const { context, probs } = attention(tq, tk, tv, { heads: H, headMask: [1, 0, 1], returnProbs: true });
    context.backward(Tensor.fromArray(randn(B * S * E, 8), [B, S, E]));
    const inHead1 = (i: number) => Math.floor((i % E) / D) === 1;
    for (const [name, t] of [['context', context], ['dq', tq.grad!], ['dk', tk.grad!], ['dv', tv.grad!]] as const) {
      const a = await t.toArray();
      if (a.some((x, i) => inHead1(i) && x !== 0)) throw new Error(`${name} of the masked head is not zero`);
      if (!a.some((x, i) => !inHead1(i) && x !== 0)) throw new Error(`${name} of the other heads is all zero`);
    }
    const p = await probs!.toArray();
    if (p.some((x, i) => Math.floor(i / (S * S)) % H === 1 && x !== 0)) throw new Error('probs of the masked head not zero');
    for (const t of [tq, tk, tv]) t.grad!.dispose();
  });
});

test('dropout: kept fraction, inverted scaling, same seed same mask, backward uses the forward mask', async () => {
  const c = { batch: 2, seq: 197, heads: 3, headDim: 16 };
  const { batch: B, seq: S, heads: H, headDim: D } = c;
  const E = H * D;
  const prob = 0.1;
  await tidy(async () => {
    const tq = Tensor.fromArray(randn(B * S * E, 11), [B, S, E]);
    const tk = Tensor.fromArray(randn(B * S * E, 12), [B, S, E]);
    const tv = Tensor.fromArray(randn(B * S * E, 13), [B, S, E]);
    const plain = await attention(tq, tk, tv, { heads: H, returnProbs: true }).probs!;
    const p = await plain.toArray();
    const dropped = await attention(tq, tk, tv, { heads: H, dropout: prob, seed: 42, returnProbs: true }).probs!.toArray();
    const kept = dropped.filter((x) => x !== 0).length / dropped.length;
    if (Math.abs(kept - (1 - prob)) > 0.005) throw new Error(`kept fraction ${kept}`);
    assertClose('kept values are p / (1 - prob)', dropped, p.map((x, i) => (dropped[i] === 0 ? 0 : x / (1 - prob))), fwdTol);
    // the same mask as the elementwise dropout kernel with that seed
    const viaElementwise = await elementwiseDropout(plain, prob, 42).toArray();
    if (viaElementwise.some((x, i) => (x === 0) !== (dropped[i] === 0))) throw new Error('mask differs from elementwise dropout');
    const again = await attention(tq, tk, tv, { heads: H, dropout: prob, seed: 42, returnProbs: true }).probs!.toArray();
    if (again.some((x, i) => x !== dropped[i])) throw new Error('same seed gave another mask');
    const other = await attention(tq, tk, tv, { heads: H, dropout: prob, seed: 43, returnProbs: true }).probs!.toArray();
    const sameZeros = other.filter((x, i) => (x === 0) === (dropped[i] === 0)).length / other.length;
    if (sameZeros > 0.9) throw new Error(`another seed gave nearly the same mask (${sameZeros})`);
  });
  // context and gradients against the reference, which regenerates the mask from the same hash
  await checkAgainstRef(c, { dropout: prob, seed: 42 });
  await checkAgainstRef({ batch: 3, seq: 26, heads: 2, headDim: 24 }, { dropout: 0.3, seed: 7, headMask: [0.5, 0] });
});

test('finite differences (plain, and with dropout, head mask and scale)', async () => {
  const [B, S, H, D] = [2, 5, 2, 3];
  const n = B * S * H * D;
  const inputs = [1, 2, 3].map((s) => ({ data: randn(n, s), shape: [B, S, H * D] }));
  await gradCheck('attention', inputs, ([q, k, v]) => attention(q, k, v, { heads: H }).context);
  await gradCheck('attention masked', inputs, ([q, k, v]) =>
    attention(q, k, v, { heads: H, dropout: 0.3, seed: 9, headMask: [1.5, 0.5], scale: 0.8 }).context);
});

test('gradients only where needed, probs only on request, nothing leaks', async () => {
  const [B, S, H, D] = [2, 17, 3, 10];
  const E = H * D;
  const c = { batch: B, seq: S, heads: H, headDim: D };
  const q = randn(B * S * E, 21), k = randn(B * S * E, 22), v = randn(B * S * E, 23), dc = randn(B * S * E, 24);
  const grads = attentionBackwardRef(q, k, v, dc, { ...c, dropout: 0.2, seed: 3 });
  const live = Tensor.liveCount;
  await tidy(async () => {
    const tq = Tensor.fromArray(q, [B, S, E]);
    const tk = Tensor.fromArray(k, [B, S, E]);
    const tv = Tensor.fromArray(v, [B, S, E], { requiresGrad: true });
    const { context, probs } = attention(tq, tk, tv, { heads: H, dropout: 0.2, seed: 3 });
    if (probs !== null) throw new Error('probs returned without returnProbs');
    context.backward(Tensor.fromArray(dc, [B, S, E]));
    if (tq.grad || tk.grad) throw new Error('gradient for an input that does not require it');
    assertClose('dv alone', await tv.grad!.toArray(), grads.dv, gradTol);
    tv.grad!.dispose();
    const plain = attention(tq, tk, Tensor.fromArray(v, [B, S, E]), { heads: H, headMask: [1, 1, 0] });
    if (plain.context.gradFn || plain.context.requiresGrad) throw new Error('recorded without inputs needing grad');
    await plain.context.toArray();
  });
  if (Tensor.liveCount !== live) throw new Error(`${Tensor.liveCount - live} tensors leaked`);
});

test.run();
