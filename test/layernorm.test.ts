import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Tensor, tidy } from '../src/tensor.ts';
import { layerNorm, layerNormConfig } from '../src/ops/layernorm.ts';
import { layerNormRef, layerNormBackwardRef } from '../src/ref/layernorm.ts';
import { add, mul } from '../src/ops/elementwise.ts';
import { Device } from '../src/gpu/device.ts';
import { assertClose, assertOp, dispatchedEntries, gradCheck, randn } from './helpers.ts';
import type { OpRun } from '../bench/validate.ts';

const fwdTol = { relL2: 1e-6, nmax: 1e-5 };
const gradTol = { relL2: 5e-6, nmax: 5e-5 };

/** x with a per-row offset and scale, so mean and variance matter. */
function inputs(rows: number, d: number, seed: number, scale = 1) {
  const x = randn(rows * d, seed, scale);
  for (let r = 0; r < rows; r++) {
    const offset = 3 * Math.sin(r + seed) * scale;
    for (let c = 0; c < d; c++) x[r * d + c] += offset;
  }
  const weight = randn(d, seed + 1, 0.5).map((v) => v + 1);
  const bias = randn(d, seed + 2, 0.5);
  const dy = randn(rows * d, seed + 3);
  return { x, weight, bias, dy };
}

interface Case { shape: number[]; eps: number }

/** layerNorm forward and backward on seeded inputs, with `threadsPerRow` set while it runs (null: the device's choice). */
function layerNormRun({ shape, eps }: Case, threadsPerRow: number | null): OpRun {
  const d = shape[shape.length - 1];
  const rows = shape.reduce((a, b) => a * b, 1) / d;
  const { x, weight, bias, dy } = inputs(rows, d, rows + d);
  return {
    async op() {
      const prev = layerNormConfig.threadsPerRow;
      layerNormConfig.threadsPerRow = threadsPerRow;
      try {
        const xt = Tensor.fromArray(x, shape, { requiresGrad: true });
        const wt = Tensor.fromArray(weight, [d], { requiresGrad: true });
        const bt = Tensor.fromArray(bias, [d], { requiresGrad: true });
        const y = layerNorm(xt, wt, bt, eps);
        assert.equal(y.shape, shape, 'output shape');
        y.backward(Tensor.fromArray(dy, shape));
        const out = { y: await y.toArray(), dx: await xt.grad!.toArray(), dweight: await wt.grad!.toArray(), dbias: await bt.grad!.toArray() };
        for (const t of [xt, wt, bt]) t.grad!.dispose();
        return out;
      } finally {
        layerNormConfig.threadsPerRow = prev;
      }
    },
    reference() {
      const g = layerNormBackwardRef(x, weight, dy, rows, d, eps);
      return { y: layerNormRef(x, weight, bias, rows, d, eps).y, dx: g.dx, dweight: g.dweight, dbias: g.dbias };
    },
  };
}

const tols = { y: fwdTol, dx: gradTol, dweight: gradTol, dbias: gradTol };
const label = ({ shape, eps }: Case, threads: number | null) => `[${shape}] eps ${eps}${threads === null ? '' : `, ${threads} threads per row`}`;

test('layerNorm forward and backward match the float64 reference (the device\'s threads per row)', () => assertOp({
  name: 'layerNorm', label, tol: tols, prepare: layerNormRun, variants: [null],
  shapes: [
    { shape: [1, 64], eps: 1e-12 }, { shape: [17, 96], eps: 1e-6 }, { shape: [2, 13, 37], eps: 1e-12 },
    { shape: [197, 192], eps: 1e-6 }, { shape: [26, 768], eps: 1e-12 }, { shape: [8, 577, 768], eps: 1e-12 },
  ],
}));

test('layerNorm: every threads-per-row variant of the kernels matches the reference', () => assertOp({
  name: 'layerNorm', label, tol: tols, prepare: layerNormRun, variants: [1, 4, 16, 64, 256], // 4: SwiftShader's default
  shapes: [{ shape: [17, 37], eps: 1e-6 }, { shape: [3, 96], eps: 1e-12 }, { shape: [9, 65], eps: 1e-12 }, { shape: [17, 768], eps: 1e-6 }],
}));

/**
 * x feeds layerNorm and mul(x, c): mul's backward runs first (the tape's order for add(layerNorm(x), mul(x, c))),
 * so layerNorm's backward adds x's pending gradient dy * c into dx in its kernel, with no add of the tape's.
 */
function pendingRun({ shape, eps }: Case, threadsPerRow: number | null): OpRun {
  const d = shape[shape.length - 1];
  const rows = shape.reduce((a, b) => a * b, 1) / d;
  const { x, weight, bias, dy } = inputs(rows, d, rows + d);
  const c = randn(rows * d, rows + d + 7);
  return {
    async op() {
      const prev = layerNormConfig.threadsPerRow;
      layerNormConfig.threadsPerRow = threadsPerRow;
      try {
        return await tidy(async () => {
          const xt = Tensor.fromArray(x, shape, { requiresGrad: true });
          const y = add(layerNorm(xt, Tensor.fromArray(weight, [d]), Tensor.fromArray(bias, [d]), eps), mul(xt, Tensor.fromArray(c, shape)));
          const dyt = Tensor.fromArray(dy, shape);
          const entries = dispatchedEntries(Device.default, () => y.backward(dyt));
          // (no add, yet dx right below: the kernel added the pending gradient)
          assert.not.ok(entries.includes('elementwise:add'), `the tape added x's gradients itself: ${entries}`);
          const dx = await xt.grad!.toArray();
          xt.grad!.dispose();
          return { dx };
        });
      } finally {
        layerNormConfig.threadsPerRow = prev;
      }
    },
    reference() {
      const pending = dy.map((v, i) => v * c[i]);
      return { dx: layerNormBackwardRef(x, weight, dy, rows, d, eps, pending).dx };
    },
  };
}

test('layerNorm backward adds x\'s pending gradient in its kernel (odd widths, every threads-per-row variant)', () => assertOp({
  name: 'layerNorm (pending dx)', label, tol: { dx: gradTol }, prepare: pendingRun, variants: [null, 1, 4, 16, 64, 256],
  shapes: [{ shape: [5, 13], eps: 1e-6 }, { shape: [3, 7, 190], eps: 1e-12 }, { shape: [197, 192], eps: 1e-6 }, { shape: [1, 1], eps: 1 }],
  // ([1, 1]: x - mean is 0, so LayerNorm's own dx is rounding noise times 1/sqrt(eps): eps 1 keeps that noise
  // under float32's, where 1e-5 amplified an H200's FMA-contracted rounding 316-fold past the tolerance)
}));

/** y, dx (with a pending gradient from mul(x, c)), dweight and dbias, bit patterns, with subgroupRows set while it runs */
async function layerNormBits(shape: number[], subgroupRows: boolean): Promise<{ bits: Record<string, Uint32Array>; entries: string[] }> {
  const d = shape[shape.length - 1];
  const rows = shape.reduce((a, b) => a * b, 1) / d;
  const { x, weight, bias, dy } = inputs(rows, d, rows + d);
  const c = randn(rows * d, rows + d + 7);
  const prev = { ...layerNormConfig };
  Object.assign(layerNormConfig, { threadsPerRow: 16, subgroupRows });
  try {
    return await tidy(async () => {
      const xt = Tensor.fromArray(x, shape, { requiresGrad: true });
      const wt = Tensor.fromArray(weight, [d], { requiresGrad: true });
      const bt = Tensor.fromArray(bias, [d], { requiresGrad: true });
      let y: Tensor | null = null;
      const entries = dispatchedEntries(Device.default, () => {
        y = layerNorm(xt, wt, bt, 1e-6);
        add(y, mul(xt, Tensor.fromArray(c, shape))).backward(Tensor.fromArray(dy, shape));
      });
      const bits: Record<string, Uint32Array> = {};
      for (const [name, t] of [['y', y!], ['dx', xt.grad!], ['dweight', wt.grad!], ['dbias', bt.grad!]] as const) {
        bits[name] = new Uint32Array((await t.toArray()).buffer);
      }
      for (const t of [xt, wt, bt]) t.grad!.dispose();
      return { bits, entries };
    });
  } finally {
    Object.assign(layerNormConfig, prev);
  }
}

test('layerNorm: the subgroup kernels (lavapipe) give the 16-thread kernels\' bits, forward and backward with a pending dx', async () => {
  const device = Device.default;
  const expectSubgroup = device.features.has('subgroups') && device.subgroupMinSize >= 8;
  for (const shape of [[1, 1], [5, 13], [4, 17], [3, 7, 190], [197, 192], [2, 768]]) {
    const plain = await layerNormBits(shape, false);
    const bySubgroup = await layerNormBits(shape, true);
    assert.not.ok(plain.entries.some((e) => e.startsWith('layernorm_subgroup:')), 'subgroupRows false keeps the workgroup kernels');
    for (const entry of ['layernorm_subgroup:layernorm_forward_subgroup', 'layernorm_subgroup:layernorm_backward_input_subgroup']) {
      assert.is(bySubgroup.entries.includes(entry), expectSubgroup, `${entry} dispatched: ${bySubgroup.entries}`);
    }
    for (const name of Object.keys(plain.bits)) {
      const a = plain.bits[name];
      const b = bySubgroup.bits[name];
      const i = a.findIndex((v, k) => v !== b[k]);
      assert.is(i, -1, `[${shape}] ${name}[${i}]: ${new Float32Array(a.buffer)[i]} vs ${new Float32Array(b.buffer)[i]}`);
    }
  }
});

test('eps is applied inside the square root (small-variance rows tell 1e-6 from 1e-12)', () => tidy(async () => {
  const rows = 5, d = 37;
  const { x, weight, bias } = inputs(rows, d, 11, 1e-4); // variance ~1e-8
  const xt = Tensor.fromArray(x, [rows, d]);
  const wt = Tensor.fromArray(weight, [d]);
  const bt = Tensor.fromArray(bias, [d]);
  const small = await layerNorm(xt, wt, bt, 1e-12).toArray();
  const large = await layerNorm(xt, wt, bt, 1e-6).toArray();
  assertClose('eps 1e-12', small, layerNormRef(x, weight, bias, rows, d, 1e-12).y, { relL2: 1e-5, nmax: 1e-4 });
  assertClose('eps 1e-6', large, layerNormRef(x, weight, bias, rows, d, 1e-6).y, { relL2: 1e-5, nmax: 1e-4 });
  const moved = small.reduce((a, v, i) => Math.max(a, Math.abs(v - large[i])), 0);
  if (moved < 0.1) throw new Error(`eps 1e-6 and 1e-12 gave nearly the same output (max diff ${moved})`);
}));

test('layerNorm finite differences (x, weight, bias)', async () => {
  const rows = 3, d = 7;
  const { x, weight, bias } = inputs(rows, d, 5);
  await gradCheck('layerNorm', [
    { data: x, shape: [rows, d] }, { data: weight, shape: [d] }, { data: bias, shape: [d] },
  ], ([a, w, b]) => layerNorm(a, w, b, 1e-5), { eps: 1e-2, tol: 2e-2 });
});

test('only the inputs that need grad get one; saved statistics are freed', () => tidy(async () => {
  const rows = 9, d = 37;
  const { x, weight, bias, dy } = inputs(rows, d, 3);
  const xt = Tensor.fromArray(x, [rows, d]);
  const wt = Tensor.fromArray(weight, [d], { requiresGrad: true });
  const bt = Tensor.fromArray(bias, [d]);
  const before = Tensor.liveCount;
  const noGradOut = layerNorm(xt, bt, bt, 1e-6); // nothing requires grad: statistics freed at once
  if (Tensor.liveCount !== before + 1) throw new Error(`live tensors ${Tensor.liveCount - before} after a no-grad forward`);
  noGradOut.dispose();
  // the output outlives the scope it was made in, and its saved statistics with it
  const y = tidy(() => layerNorm(xt, wt, bt, 1e-6));
  y.backward(Tensor.fromArray(dy, [rows, d]));
  if (xt.grad || bt.grad) throw new Error('inputs without requiresGrad got a gradient');
  const g = layerNormBackwardRef(x, weight, dy, rows, d, 1e-6);
  assertClose('dweight', await wt.grad!.toArray(), g.dweight, gradTol);
  wt.grad!.dispose();
}));

test('layerNorm rejects mismatched parameters', () => tidy(() => {
  const x = Tensor.zeros([2, 5]);
  const w = Tensor.zeros([4]);
  assert.throws(() => layerNorm(x, w, w, 1e-5), /must have 5 elements/, 'weight [4] with x [2, 5]');
}));

test.run();
