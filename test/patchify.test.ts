import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Tensor, tidy } from '../src/tensor.ts';
import { patchify, embeddings, selectToken } from '../src/ops/patchify.ts';
import {
  patchifyRef, patchifyBackwardRef, embeddingsRef, embeddingsBackwardRef, selectTokenRef, selectTokenBackwardRef,
} from '../src/ref/patchify.ts';
import { assertClose, gradCheck, randn } from './helpers.ts';

// Copies are exact; the embedding add and the batch sums round once per step.
const exact = { relL2: 0, nmax: 0 };
const fwdTol = { relL2: 1e-6, nmax: 1e-6 };
const gradTol = { relL2: 5e-6, nmax: 5e-6 };

const patchCases: { batch: number; channels: number; h: number; w: number; patch: number | [number, number] }[] = [
  { batch: 1, channels: 3, h: 32, w: 32, patch: 8 },
  { batch: 3, channels: 3, h: 40, w: 40, patch: 8 },
  { batch: 3, channels: 3, h: 32, w: 32, patch: 16 },
  { batch: 3, channels: 3, h: 24, w: 40, patch: 8 },
  { batch: 3, channels: 3, h: 224, w: 224, patch: 16 },
  { batch: 2, channels: 5, h: 12, w: 40, patch: [4, 8] },
];

for (const { batch, channels, h, w, patch } of patchCases) {
  const [ph, pw] = typeof patch === 'number' ? [patch, patch] : patch;
  test(`patchify forward/backward matches the reference (B=${batch} C=${channels} ${h}x${w}, patch ${ph}x${pw})`, () =>
    tidy(async () => {
      const shape = [batch, channels, h, w];
      const n = batch * channels * h * w;
      const x = randn(n, n + h);
      const xt = Tensor.fromArray(x, shape, { requiresGrad: true });
      const y = patchify(xt, patch);
      const tokens = (h / ph) * (w / pw);
      if (y.shape.join() !== [batch, tokens, channels * ph * pw].join()) throw new Error(`shape [${y.shape}]`);
      assertClose('patchify', await y.toArray(), patchifyRef(x, shape, ph, pw), exact);
      const dout = randn(n, n + 1);
      y.backward(Tensor.fromArray(dout, y.shape));
      assertClose('patchify dx', await xt.grad!.toArray(), patchifyBackwardRef(dout, shape, ph, pw), exact);
      xt.grad!.dispose();
    }));
}

test('patchify then a [D, C*P*P] matmul equals Conv2d(kernel = stride = P)', () => tidy(async () => {
  const [batch, channels, h, w, p, dim] = [2, 3, 16, 24, 8, 5];
  const x = randn(batch * channels * h * w, 3);
  const weight = randn(dim * channels * p * p, 4); // [D, C, P, P]
  const patches = await patchify(Tensor.fromArray(x, [batch, channels, h, w]), p).toArray();
  const rows = h / p, cols = w / p, features = channels * p * p;
  for (let b = 0; b < batch; b++) {
    for (let oy = 0; oy < rows; oy++) {
      for (let ox = 0; ox < cols; ox++) {
        for (let o = 0; o < dim; o++) {
          let conv = 0, linear = 0;
          for (let c = 0; c < channels; c++) {
            for (let ky = 0; ky < p; ky++) {
              for (let kx = 0; kx < p; kx++) {
                conv += weight[((o * channels + c) * p + ky) * p + kx] * x[((b * channels + c) * h + oy * p + ky) * w + ox * p + kx];
              }
            }
          }
          const t = oy * cols + ox;
          for (let k = 0; k < features; k++) linear += weight[o * features + k] * patches[(b * rows * cols + t) * features + k];
          if (Math.abs(conv - linear) > 1e-9 * Math.max(1, Math.abs(conv))) {
            throw new Error(`b=${b} patch ${t} out ${o}: conv ${conv} vs linear ${linear}`);
          }
        }
      }
    }
  }
}));

test('patchify rejects indivisible sizes, naming them', () => {
  const x = Tensor.zeros([1, 3, 30, 40]);
  assert.throws(() => tidy(() => patchify(x, 8)), /30x40.*8x8/, '30x40 / 8');
  assert.throws(() => tidy(() => patchify(x, [5, 16])), /30x40.*5x16/, '30x40 / [5, 16]');
  assert.throws(() => tidy(() => patchify(x, 0)), /positive integers/, 'patch 0');
  assert.throws(() => tidy(() => patchify(Tensor.zeros([3, 8, 8]), 4)), /\[B, C, H, W\].*\[3,8,8\]/, 'rank 3');
  x.dispose();
});

const embedCases = [
  { batch: 1, tokens: 196, dim: 64 },
  { batch: 3, tokens: 196, dim: 37 },
  { batch: 3, tokens: 25, dim: 64 },
  { batch: 1, tokens: 16, dim: 37 },
];

for (const { batch, tokens, dim } of embedCases) {
  test(`embeddings forward/backward match the reference (B=${batch} T=${tokens} D=${dim})`, () => tidy(async () => {
    const seqLen = tokens + 1;
    const p = randn(batch * tokens * dim, tokens + dim);
    const c = randn(dim, 5);
    const q = randn(seqLen * dim, 6, 0.1);
    const pt = Tensor.fromArray(p, [batch, tokens, dim], { requiresGrad: true });
    const ct = Tensor.fromArray(c, [1, 1, dim], { requiresGrad: true });
    const qt = Tensor.fromArray(q, [1, seqLen, dim], { requiresGrad: true });
    const hOut = embeddings(pt, ct, qt);
    if (hOut.shape.join() !== [batch, seqLen, dim].join()) throw new Error(`shape [${hOut.shape}]`);
    assertClose('embeddings', await hOut.toArray(), embeddingsRef(p, c, q, batch, tokens, dim), fwdTol);
    const dh = randn(hOut.size, 9);
    hOut.backward(Tensor.fromArray(dh, hOut.shape));
    const ref = embeddingsBackwardRef(dh, batch, tokens, dim);
    assertClose('dpatches', await pt.grad!.toArray(), ref.dpatches, exact);
    assertClose('dcls', await ct.grad!.toArray(), ref.dcls, gradTol);
    assertClose('dpos', await qt.grad!.toArray(), ref.dpos, gradTol);
    if (ct.grad!.shape.join() !== '1,1,' + dim || qt.grad!.shape.join() !== `1,${seqLen},${dim}`) throw new Error('grad shapes');
    for (const t of [pt, ct, qt]) t.grad!.dispose();
  }));
}

test('embeddings backward computes only the gradients asked for', () => tidy(async () => {
  const [batch, tokens, dim] = [3, 4, 37];
  const dh = randn(batch * (tokens + 1) * dim, 2);
  const ref = embeddingsBackwardRef(dh, batch, tokens, dim);
  for (const wants of [[true, false, false], [false, true, false], [false, false, true]]) {
    const leaves = [
      Tensor.fromArray(randn(batch * tokens * dim, 1), [batch, tokens, dim], { requiresGrad: wants[0] }),
      Tensor.fromArray(randn(dim, 2), [1, 1, dim], { requiresGrad: wants[1] }),
      Tensor.fromArray(randn((tokens + 1) * dim, 3), [1, tokens + 1, dim], { requiresGrad: wants[2] }),
    ];
    embeddings(leaves[0], leaves[1], leaves[2]).backward(Tensor.fromArray(dh, [batch, tokens + 1, dim]));
    const expected = [ref.dpatches, ref.dcls, ref.dpos];
    for (let i = 0; i < 3; i++) {
      if (wants[i] !== (leaves[i].grad !== null)) throw new Error(`input ${i}: grad presence ${leaves[i].grad !== null}`);
      if (leaves[i].grad) assertClose(`grad ${i}`, await leaves[i].grad!.toArray(), expected[i], gradTol);
      leaves[i].grad?.dispose();
    }
  }
}));

test('embeddings rejects mismatched shapes', () => {
  const p = Tensor.zeros([2, 4, 8]);
  const cls = Tensor.zeros([1, 1, 8]);
  const pos = Tensor.zeros([1, 5, 8]);
  assert.throws(() => tidy(() => embeddings(p, cls, Tensor.zeros([1, 4, 8]))), /pos must be \[1, 5, 8\].*got \[1,4,8\]/, 'pos T');
  assert.throws(() => tidy(() => embeddings(p, cls, Tensor.zeros([1, 5, 7]))), /pos must be \[1, 5, 8\]/, 'pos D');
  assert.throws(() => tidy(() => embeddings(p, Tensor.zeros([1, 1, 7]), pos)), /cls must be \[1, 1, 8\].*got \[1,1,7\]/, 'cls D');
  assert.throws(() => tidy(() => embeddings(p, Tensor.zeros([8]), pos)), /cls must be \[1, 1, D\]/, 'cls rank');
  assert.throws(() => tidy(() => embeddings(Tensor.zeros([8, 8]), cls, pos)), /patches must be \[B, T, D\]/, 'patches rank');
  for (const t of [p, cls, pos]) t.dispose();
});

const selectCases = [
  { batch: 1, seqLen: 197, dim: 64, index: 0 },
  { batch: 3, seqLen: 197, dim: 37, index: 0 },
  { batch: 3, seqLen: 17, dim: 37, index: 5 },
  { batch: 3, seqLen: 26, dim: 64, index: -1 },
];

for (const { batch, seqLen, dim, index } of selectCases) {
  test(`selectToken forward/backward match the reference (B=${batch} S=${seqLen} D=${dim} index ${index})`, () =>
    tidy(async () => {
      const token = index < 0 ? index + seqLen : index;
      const h = randn(batch * seqLen * dim, seqLen + dim);
      const ht = Tensor.fromArray(h, [batch, seqLen, dim], { requiresGrad: true });
      const y = selectToken(ht, index);
      if (y.shape.join() !== [batch, dim].join()) throw new Error(`shape [${y.shape}]`);
      assertClose('selectToken', await y.toArray(), selectTokenRef(h, batch, seqLen, dim, token), exact);
      const dout = randn(batch * dim, 3);
      y.backward(Tensor.fromArray(dout, y.shape));
      assertClose('selectToken dh', await ht.grad!.toArray(), selectTokenBackwardRef(dout, batch, seqLen, dim, token), exact);
      ht.grad!.dispose();
    }));
}

test('selectToken rejects an index out of range', () => {
  const h = Tensor.zeros([2, 5, 3]);
  assert.throws(() => tidy(() => selectToken(h, 5)), /index 5 is out of range for 5 tokens/, 'index 5');
  assert.throws(() => tidy(() => selectToken(h, -6)), /index -6/, 'index -6');
  h.dispose();
});

test('finite differences: patchify, embeddings, selectToken', async () => {
  await gradCheck('patchify', [{ data: randn(2 * 3 * 8 * 12, 1), shape: [2, 3, 8, 12] }], ([x]) => patchify(x, 4));
  await gradCheck('patchify 2x4', [{ data: randn(1 * 2 * 6 * 8, 2), shape: [1, 2, 6, 8] }], ([x]) => patchify(x, [2, 4]));
  await gradCheck(
    'embeddings',
    [
      { data: randn(2 * 3 * 5, 3), shape: [2, 3, 5] },
      { data: randn(5, 4), shape: [1, 1, 5] },
      { data: randn(4 * 5, 5), shape: [1, 4, 5] },
    ],
    ([p, c, q]) => embeddings(p, c, q),
  );
  await gradCheck('selectToken', [{ data: randn(2 * 4 * 5, 6), shape: [2, 4, 5] }], ([h]) => selectToken(h, 1));
  await gradCheck(
    'patch embedding chain',
    [
      { data: randn(2 * 3 * 8 * 8, 7), shape: [2, 3, 8, 8] },
      { data: randn(48, 8), shape: [1, 1, 48] },
      { data: randn(5 * 48, 9), shape: [1, 5, 48] },
    ],
    ([x, c, q]) => selectToken(embeddings(patchify(x, 4), c, q), 2),
  );
});

test('no tensors leak from forward and backward (outside tidy)', async () => {
  const before = Tensor.liveCount;
  const x = Tensor.fromArray(randn(2 * 3 * 8 * 8, 1), [2, 3, 8, 8], { requiresGrad: true });
  const c = Tensor.fromArray(randn(48, 2), [1, 1, 48], { requiresGrad: true });
  const q = Tensor.fromArray(randn(5 * 48, 3), [1, 5, 48], { requiresGrad: true });
  const patches = patchify(x, 4);
  const h = embeddings(patches, c, q);
  const out = selectToken(h);
  const dout = Tensor.fromArray(randn(2 * 48, 4), [2, 48]);
  out.backward(dout);
  await x.grad!.toArray();
  for (const t of [x, c, q]) t.grad!.dispose();
  for (const t of [x, c, q, patches, h, out, dout]) t.dispose();
  const left = Tensor.liveCount - before;
  if (left !== 0) throw new Error(`${left} tensors left alive`);
});

test.run();
