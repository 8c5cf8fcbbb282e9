import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Tensor, tidy } from '../src/tensor.ts';
import { Device } from '../src/gpu/device.ts';
import { setKernelVariants, type KernelVariant } from '../src/ops/variants.ts';
import { linear, matmulConfig, matmulRaw } from '../src/ops/matmul.ts';
import { linearGelu, linearResidual, mlpResidual } from '../src/ops/fused.ts';
import { gelu, add } from '../src/ops/elementwise.ts';
import { matmulRef, linearRef, linearBackwardRef } from '../src/ref/matmul.ts';
import { geluRef, geluGradRef } from '../src/ref/elementwise.ts';
import { assertClose, gradCheck, randn, setupDevice } from './helpers.ts';

const fwdTol = { relL2: 1e-5, nmax: 1e-5 };
const gradTol = { relL2: 5e-5, nmax: 5e-5 };
// fused against unfused: the same float32 operations in the same order, up to the compiler's contractions
const sameTol = { relL2: 1e-6, nmax: 1e-6 };
const variants: KernelVariant[] = ['register', 'shared'];

// [rows, in, out]: one row, odd widths (not multiples of 4), ViT's 197 tokens, a width of 24 (vec4 loads)
const shapes = [[1, 37, 10], [17, 10, 37], [197, 24, 37], [577, 37, 24]] as const;

interface Case { x: Float32Array; w: Float32Array; b: Float32Array; r: Float32Array; dy: Float32Array }

function data(rows: number, inF: number, outF: number, seed: number): Case {
  return {
    x: randn(rows * inF, seed), w: randn(outF * inF, seed + 1, 0.3), b: randn(outF, seed + 2),
    r: randn(rows * outF, seed + 3), dy: randn(rows * outF, seed + 4),
  };
}

/** y = f(x, w, b, r) and the gradients of sum(y * dy) for x, w, b, r (leaves), read back. */
async function run(
  c: Case, rows: number, inF: number, outF: number,
  f: (x: Tensor, w: Tensor, b: Tensor, r: Tensor) => Tensor,
): Promise<Float32Array[]> {
  return tidy(async () => {
    const leaves = [[c.x, [rows, inF]], [c.w, [outF, inF]], [c.b, [outF]], [c.r, [rows, outF]]] as const;
    const [x, w, b, r] = leaves.map(([v, s]) => Tensor.fromArray(v, [...s], { requiresGrad: true }));
    const y = f(x, w, b, r);
    y.backward(Tensor.fromArray(c.dy, y.shape));
    const out = [await y.toArray()];
    for (const t of [x, w, b, r]) {
      out.push(t.grad ? await t.grad.toArray() : new Float32Array(0));
      t.grad?.dispose();
    }
    return out;
  });
}

const names = ['y', 'dx', 'dW', 'db', 'dresidual'];

async function withVariant<T>(variant: KernelVariant, fn: () => Promise<T>): Promise<T> {
  const device = await setupDevice();
  const before = setKernelVariants(device, { matmul: variant });
  try {
    return await fn();
  } finally {
    setKernelVariants(device, before);
  }
}

for (const variant of variants) {
  test(`linearGelu ${variant}: forward and backward equal linear + gelu and the reference at odd shapes`, () => withVariant(variant, async () => {
    for (const [rows, inF, outF] of shapes) {
      const c = data(rows, inF, outF, rows + inF);
      const fused = await run(c, rows, inF, outF, (x, w, b) => linearGelu(x, w, b));
      const unfused = await run(c, rows, inF, outF, (x, w, b) => gelu(linear(x, w, b)));
      const at = `${variant} ${rows}x${inF}->${outF}`;
      for (let i = 0; i < 4; i++) assertClose(`linearGelu vs unfused ${names[i]} ${at}`, fused[i], unfused[i], sameTol);
      const z = linearRef(c.x, c.w, c.b, rows, inF, outF);
      const dz = z.map((v, i) => c.dy[i] * geluGradRef(v));
      const ref = linearBackwardRef(c.x, c.w, dz, rows, inF, outF);
      assertClose(`linearGelu y ${at}`, fused[0], z.map(geluRef), fwdTol);
      assertClose(`linearGelu dx ${at}`, fused[1], ref.dx, gradTol);
      assertClose(`linearGelu dW ${at}`, fused[2], ref.dW, gradTol);
      assertClose(`linearGelu db ${at}`, fused[3], ref.db, gradTol);
    }
  }));

  test(`linearResidual ${variant}: forward and backward equal linear + add and the reference at odd shapes`, () => withVariant(variant, async () => {
    for (const [rows, inF, outF] of shapes) {
      const c = data(rows, inF, outF, 2 * rows + inF);
      const fused = await run(c, rows, inF, outF, (x, w, b, r) => linearResidual(x, w, b, r));
      const unfused = await run(c, rows, inF, outF, (x, w, b, r) => add(linear(x, w, b), r));
      const at = `${variant} ${rows}x${inF}->${outF}`;
      for (let i = 0; i < 5; i++) assertClose(`linearResidual vs unfused ${names[i]} ${at}`, fused[i], unfused[i], sameTol);
      const y = linearRef(c.x, c.w, c.b, rows, inF, outF).map((v, i) => v + c.r[i]);
      const ref = linearBackwardRef(c.x, c.w, c.dy, rows, inF, outF);
      assertClose(`linearResidual y ${at}`, fused[0], y, fwdTol);
      assertClose(`linearResidual dx ${at}`, fused[1], ref.dx, gradTol);
      assertClose(`linearResidual dW ${at}`, fused[2], ref.dW, gradTol);
      assertClose(`linearResidual db ${at}`, fused[3], ref.db, gradTol);
      assertClose(`linearResidual dresidual ${at}`, fused[4], c.dy, { relL2: 0, nmax: 0 });
    }
  }));
}

for (const variant of variants) {
  test(`mlpResidual ${variant}: forward and backward equal linear + gelu + linear + add and the reference at odd shapes`, () => withVariant(variant, async () => {
    // [rows, in, hidden, out]
    for (const [rows, inF, hidden, outF] of [[1, 37, 10, 24], [17, 10, 37, 10], [197, 24, 37, 24], [577, 37, 24, 37]] as const) {
      const c = data(rows, inF, outF, 3 * rows + inF);
      const w1 = randn(hidden * inF, rows + 7, 0.3), b1 = randn(hidden, rows + 8), w2 = randn(outF * hidden, rows + 9, 0.3);
      const runMlp = (f: (x: Tensor, w1: Tensor, b1: Tensor, w2: Tensor, b2: Tensor, r: Tensor) => Tensor) => tidy(async () => {
        const shapes = [[c.x, [rows, inF]], [w1, [hidden, inF]], [b1, [hidden]], [w2, [outF, hidden]], [c.b, [outF]], [c.r, [rows, outF]]] as const;
        const leaves = shapes.map(([v, sh]) => Tensor.fromArray(v, [...sh], { requiresGrad: true }));
        const y = f(leaves[0], leaves[1], leaves[2], leaves[3], leaves[4], leaves[5]);
        y.backward(Tensor.fromArray(c.dy, y.shape));
        const out = [await y.toArray()];
        for (const t of leaves) out.push(await t.grad!.toArray());
        return out;
      });
      const fused = await runMlp(mlpResidual);
      const unfused = await runMlp((x, v1, u1, v2, u2, r) => add(linear(gelu(linear(x, v1, u1)), v2, u2), r));
      const names6 = ['y', 'dx', 'dW1', 'db1', 'dW2', 'db2', 'dresidual'];
      const at = `${variant} ${rows}x${inF}->${hidden}->${outF}`;
      fused.forEach((v, i) => assertClose(`mlpResidual vs unfused ${names6[i]} ${at}`, v, unfused[i], sameTol));
      const z = linearRef(c.x, w1, b1, rows, inF, hidden);
      const a = z.map(geluRef);
      const down = linearBackwardRef(a, w2, c.dy, rows, hidden, outF);
      const up = linearBackwardRef(c.x, w1, down.dx.map((v, i) => v * geluGradRef(z[i])), rows, inF, hidden);
      const want = [linearRef(a, w2, c.b, rows, hidden, outF).map((v, i) => v + c.r[i]), up.dx, up.dW, up.db, down.dW, down.db, c.dy];
      fused.forEach((v, i) => assertClose(`mlpResidual ${names6[i]} ${at}`, v, want[i], i === 0 ? fwdTol : gradTol));
    }
  }));
}

test('linearGelu, linearResidual and mlpResidual: the same inputs twice give the same bits, forward and backward', async () => {
  const [rows, inF, outF] = [197, 37, 24];
  const c = data(rows, inF, outF, 900);
  const ops = [
    (x: Tensor, w: Tensor, b: Tensor) => linearGelu(x, w, b),
    (x: Tensor, w: Tensor, b: Tensor, r: Tensor) => linearResidual(x, w, b, r),
  ];
  const w2 = Tensor.fromArray(randn(outF * outF, 901, 0.3), [outF, outF]);
  ops.push((x: Tensor, w: Tensor, b: Tensor, r: Tensor) => mlpResidual(x, w, b, w2, b, r));
  for (const f of ops) {
    const first = await run(c, rows, inF, outF, f);
    const second = await run(c, rows, inF, outF, f);
    first.forEach((v, i) => assert.equal(Buffer.from(second[i].buffer), Buffer.from(v.buffer), `${names[i]} differs between runs`));
  }
});

test('linearGelu, linearResidual: residual as computed (non-leaf) input, no bias, inference', () => tidy(async () => {
  const [rows, inF, outF] = [17, 10, 37];
  const c = data(rows, inF, outF, 950);
  const x = Tensor.fromArray(c.x, [rows, inF], { requiresGrad: true });
  const w = Tensor.fromArray(c.w, [outF, inF], { requiresGrad: true });
  const w2 = Tensor.fromArray(randn(outF * outF, 951, 0.3), [outF, outF]);
  // h feeds both the product and the residual, as in a transformer block; its gradient sums both paths
  const h = linearGelu(x, w); // no bias
  const y = linearResidual(h, w2, null, h);
  y.backward(Tensor.fromArray(c.dy, y.shape));
  const xg = await x.grad!.toArray();
  for (const t of [x, w]) { t.grad!.dispose(); t.grad = null; }
  const y2 = add(linear(gelu(linear(x, w)), w2), gelu(linear(x, w)));
  assertClose('block forward', await y.toArray(), await y2.toArray(), sameTol);
  y2.backward(Tensor.fromArray(c.dy, y.shape));
  assertClose('block dx (both paths)', xg, await x.grad!.toArray(), { relL2: 1e-5, nmax: 1e-5 });
  for (const t of [x, w]) { t.grad!.dispose(); t.grad = null; }
  // no input needs a gradient: no pre-activation is kept, the result is the same
  const free = Tensor.fromArray(c.x, [rows, inF]), fw = Tensor.fromArray(c.w, [outF, inF]);
  const yi = linearGelu(free, fw);
  assert.is(yi.gradFn, null);
  assertClose('inference linearGelu', await yi.toArray(), await gelu(linear(free, fw)).toArray(), sameTol);
}));

test('finite differences: linearGelu, linearResidual and mlpResidual', async () => {
  const x = { data: randn(3 * 5, 960), shape: [3, 5] }, w = { data: randn(4 * 5, 961, 0.5), shape: [4, 5] };
  const b = { data: randn(4, 962), shape: [4] }, r = { data: randn(3 * 4, 963), shape: [3, 4] };
  await gradCheck('linearGelu', [x, w, b], ([tx, tw, tb]) => linearGelu(tx, tw, tb));
  await gradCheck('linearResidual', [x, w, b, r], ([tx, tw, tb, tr]) => linearResidual(tx, tw, tb, tr));
  const w2 = { data: randn(4 * 4, 964, 0.5), shape: [4, 4] }, b2 = { data: randn(4, 965), shape: [4] };
  await gradCheck('mlpResidual', [x, w, b, w2, b2, r], ([tx, tw, tb, tw2, tb2, tr]) => mlpResidual(tx, tw, tb, tw2, tb2, tr));
});

test('matmulRaw register: epilogues on products split into K slices and row blocks (the GELU of the whole sum)', () => tidy(async () => {
  const [M, K, N] = [53, 53, 12];
  const a = randn(M * K, 970), b = randn(N * K, 971, 0.3), bias = randn(N, 972), r = randn(M * N, 973);
  const [ta, tb, tbias] = [Tensor.fromArray(a, [M, K]), Tensor.fromArray(b, [N, K]), Tensor.fromArray(bias, [N])];
  const z = linearRef(a, b, bias, M, K, N);
  try {
    matmulConfig.textureRows = 24;
    const out = Tensor.empty([M, N]), pre = Tensor.empty([M, N]);
    matmulRaw(ta, tb, out, { M, N, K, transB: true, bias: tbias, gelu: true, preact: pre, variant: 'register' });
    assertClose('split gelu', await out.toArray(), z.map(geluRef), fwdTol);
    assertClose('split preact', await pre.toArray(), z, fwdTol);
    const out2 = Tensor.empty([M, N]);
    matmulRaw(ta, tb, out2, { M, N, K, transB: true, bias: tbias, residual: Tensor.fromArray(r, [M, N]), variant: 'register' });
    assertClose('split residual', await out2.toArray(), z.map((v, i) => v + r[i]), fwdTol);
  } finally {
    matmulConfig.textureRows = 0;
  }
}));

test('matmulRaw sumA: column sums of a = A^T beside the product, every kernel, K slices, row blocks, accumulate', async () => {
  const device = await setupDevice();
  // [K, M, N]: one row; odd sizes; ViT's 197 rows into a wide output; past the texture height below; two
  // 64-row workgroups of the texture kernel, the second part-filled
  const cases = [[1, 37, 10], [197, 24, 37], [577, 10, 24], [53, 30, 12], [40, 100, 9]] as const;
  let seed = 990;
  for (const variant of variants) {
    for (const [K, M, N] of cases) {
      await tidy(async () => {
        const a = randn(K * M, seed++), b = randn(K * N, seed++), s0 = randn(M, seed++);
        const want = new Float64Array(M);
        for (let k = 0; k < K; k++) for (let m = 0; m < M; m++) want[m] += a[k * M + m];
        const split = K === 53 && variant === 'register'; // K slices, then row blocks (summed apart)
        for (const textureRows of split ? [24, 20] : [0]) {
          matmulConfig.textureRows = textureRows;
          try {
            for (const accumulate of [false, true]) {
              const sumA = Tensor.fromArray(s0, [M]), out = Tensor.zeros([M, N]);
              matmulRaw(Tensor.fromArray(a, [K, M]), Tensor.fromArray(b, [K, N]), out, { M, N, K, transA: true, accumulate, sumA, variant });
              const at = `${variant} K=${K} M=${M} N=${N}${accumulate ? ' accumulate' : ''}${textureRows ? ` texture rows ${textureRows}` : ''}`;
              assertClose(`sumA ${at}`, await sumA.toArray(), want.map((v, i) => v + (accumulate ? s0[i] : 0)), fwdTol);
              assertClose(`product with sumA ${at}`, await out.toArray(), matmulRef(a, b, { M, N, K, transA: true }), fwdTol);
            }
          } finally {
            matmulConfig.textureRows = 0;
          }
        }
      });
    }
  }
  await tidy(async () => {
    const [K, M, N] = [577, 37, 24];
    const a = Tensor.fromArray(randn(K * M, 999), [K, M]), b = Tensor.fromArray(randn(K * N, 998), [K, N]);
    const dispatches = (sumA: Tensor | null) => {
      const before = device.dispatchCount;
      matmulRaw(a, b, Tensor.empty([M, N]), { M, N, K, transA: true, sumA, variant: 'register' });
      return device.dispatchCount - before;
    };
    // the texture kernel forms the sums itself: no pass of their own
    if (device.features.has('subgroups')) assert.is(dispatches(Tensor.empty([M])), dispatches(null), 'sumA costs a dispatch');
    // determinism: the same bits twice
    const sums = await Promise.all([0, 1].map(() => {
      const s = Tensor.empty([M]);
      dispatches(s);
      return s.toArray();
    }));
    assert.equal(Buffer.from(sums[0].buffer), Buffer.from(sums[1].buffer), 'sumA differs between runs');
  });
});

for (const variant of variants) {
  test(`matmulRaw ${variant}: epilogues follow out's layout (batch, heads, offset, row pitch) and apply after accumulation`, () => tidy(async () => {
    // 2 groups x 2 heads of [M, K] x [K, N], out rows of pitch ldC starting at offsetC (the head slices of
    // [B, M, H * ldC'] style layouts); residual and preact laid out the same
    const [M, K, N, heads, batch, ldC, offsetC] = [9, 13, 10, 2, 4, 23, 5];
    const headC = N, strideC = M * ldC; // heads side by side within a row, groups one after another
    const size = offsetC + (batch / heads) * strideC;
    const a = randn(batch * M * K, 1000), b = randn(batch * K * N, 1001, 0.5), r = randn(size, 1002), c0 = randn(size, 1003);
    const layout = { M, N, K, batch, heads, ldC, offsetC, batchStrideC: strideC, headStrideC: headC, variant };
    const at = (z: number, m: number, n: number) => offsetC + Math.floor(z / heads) * strideC + (z % heads) * headC + m * ldC + n;
    const ref = matmulRef(a, b, { M, N, K, batch });
    const expect = (f: (v: number, i: number) => number, base: Float32Array) => {
      const want = Float64Array.from(base);
      for (let z = 0; z < batch; z++) for (let m = 0; m < M; m++) for (let n = 0; n < N; n++) {
        const i = at(z, m, n);
        want[i] = f(ref[(z * M + m) * N + n], i);
      }
      return want;
    };
    const ta = Tensor.fromArray(a, [a.length]), tb = Tensor.fromArray(b, [b.length]);
    // residual; elements between the rows' ends and the pitch stay as they were
    let out = Tensor.fromArray(c0, [size]);
    matmulRaw(ta, tb, out, { ...layout, residual: Tensor.fromArray(r, [size]) });
    assertClose(`${variant} residual, strided`, await out.toArray(), expect((v, i) => v + r[i], c0), fwdTol);
    // GELU of (out + product), with the pre-activation kept
    out = Tensor.fromArray(c0, [size]);
    const pre = Tensor.fromArray(c0, [size]);
    matmulRaw(ta, tb, out, { ...layout, accumulate: true, gelu: true, preact: pre });
    assertClose(`${variant} accumulate + gelu, strided`, await out.toArray(), expect((v, i) => geluRef(v + c0[i]), c0), fwdTol);
    assertClose(`${variant} accumulate + preact, strided`, await pre.toArray(), expect((v, i) => v + c0[i], c0), fwdTol);
    // the GELU's backward: out = product * gelu'(z)
    out = Tensor.fromArray(c0, [size]);
    matmulRaw(ta, tb, out, { ...layout, geluGradAt: Tensor.fromArray(r, [size]) });
    assertClose(`${variant} geluGradAt, strided`, await out.toArray(), expect((v, i) => v * geluGradRef(r[i]), c0), fwdTol);
  }));
}

test('matmulRaw: epilogue errors', () => tidy(() => {
  const a = Tensor.zeros([4, 5]), b = Tensor.zeros([5, 3]), out = Tensor.empty([4, 3]);
  const p = { M: 4, N: 3, K: 5 };
  assert.throws(() => matmulRaw(a, b, out, { ...p, gelu: true, residual: Tensor.zeros([12]) }), /one epilogue at a time/);
  assert.throws(() => matmulRaw(a, b, out, { ...p, preact: Tensor.zeros([12]) }), /preact .* needs gelu/);
  assert.throws(() => matmulRaw(a, b, out, { ...p, residual: Tensor.zeros([11]) }), /residual \[11\] has 11 elements/);
  assert.throws(() => matmulRaw(a, b, out, { ...p, residual: out }), /out must not share storage/);
  assert.throws(() => matmulRaw(a, b, out, { ...p, sumA: Tensor.zeros([4]) }), /sumA \[4\] needs transA/);
  assert.throws(() => matmulRaw(Tensor.zeros([5, 4]), b, out, { ...p, transA: true, sumA: Tensor.zeros([3]) }), /M=4 elements/);
  assert.throws(() => linearResidual(a, Tensor.zeros([3, 5]), null, Tensor.zeros([3, 4])), /residual \[3,4\] must have the output's shape \[4,3\]/);
  assert.throws(() => linearGelu(a, Tensor.zeros([3, 4])), /linearGelu: input \[4,5\] does not fit weight \[3,4\]/);
  assert.throws(() => mlpResidual(a, Tensor.zeros([6, 5]), null, Tensor.zeros([3, 7]), null, out), /mlpResidual \(second layer\): input \[4,6\] does not fit weight \[3,7\]/);
  assert.throws(() => matmulRaw(a, b, out, { ...p, gelu: true, geluGradAt: Tensor.zeros([12]) }), /one epilogue at a time/);
}));

test('device without subgroups: the plain register kernel runs the GELU and residual epilogues', async () => {
  const device = await Device.create({ disableFeatures: ['subgroups'] });
  try {
    await tidy(async () => {
      const on = { device };
      const [rows, inF, outF] = [17, 10, 37];
      const c = data(rows, inF, outF, 980);
      const [x, w, b, r] = [[c.x, [rows, inF]], [c.w, [outF, inF]], [c.b, [outF]], [c.r, [rows, outF]]]
        .map(([v, s]) => Tensor.fromArray(v as Float32Array, s as number[], on));
      const z = linearRef(c.x, c.w, c.b, rows, inF, outF);
      assertClose('no subgroups linearGelu', await linearGelu(x, w, b).toArray(), z.map(geluRef), fwdTol);
      for (const t of [x, w, b]) t.requiresGrad = true;
      const y = linearResidual(x, w, b, r);
      assertClose('no subgroups linearResidual', await y.toArray(), z.map((v, i) => v + c.r[i]), fwdTol);
      // backward: the bias gradient in a pass of its own (this kernel forms no sums of A)
      y.backward(Tensor.fromArray(c.dy, y.shape, on));
      const ref = linearBackwardRef(c.x, c.w, c.dy, rows, inF, outF);
      assertClose('no subgroups linearResidual dW', await w.grad!.toArray(), ref.dW, gradTol);
      assertClose('no subgroups linearResidual db', await b.grad!.toArray(), ref.db, gradTol);
      for (const t of [x, w, b]) t.grad?.dispose();
    });
  } finally {
    device.destroy();
  }
});

test.run();
