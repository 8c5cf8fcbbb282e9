import { test } from 'uvu';
import { Tensor, tidy } from '../src/tensor.ts';
import * as assert from 'uvu/assert';
import { Device } from '../src/gpu/device.ts';
import type { KernelVariant } from '../src/ops/variants.ts';
import { releaseScratchTextures, scratchTextureBytes, scratchTextureConfig } from '../src/ops/scratch-textures.ts';
import { wgsl } from '../src/gpu/wgsl.generated.ts';
import { matmul, matmulConfig, matmulKernel, matmulRaw, linear, splitKCount, textureRowGroups } from '../src/ops/matmul.ts';
import { matmulRef, linearRef, linearBackwardRef } from '../src/ref/matmul.ts';
import { assertClose, dispatchedEntries, gradCheck, messageHas, randn } from './helpers.ts';

const fwdTol = { relL2: 1e-5, nmax: 1e-5 };
const gradTol = { relL2: 5e-5, nmax: 5e-5 };
const variants: KernelVariant[] = ['register', 'shared', 'subgroup4'];
const transposes = [[false, false], [false, true], [true, false], [true, true]] as const;
const tag = (tA: boolean, tB: boolean) => `${tA ? 'T' : 'N'}${tB ? 'T' : 'N'}`;

// [M, K, N, batch]: edges of every tile size, K not a multiple of 4, a ViT attention shape, a batch
const shapes = [[1, 1, 1, 1], [17, 26, 13, 1], [197, 64, 192, 1], [26, 35, 17, 3], [9, 12, 40, 2]] as const;

for (const variant of variants) {
  test(`matmulRaw ${variant}: every transpose at odd shapes, with bias and alpha`, () => tidy(async () => {
    let seed = 1;
    for (const [M, K, N, batch] of shapes) {
      for (const [transA, transB] of transposes) {
        const a = randn(batch * M * K, seed++), b = randn(batch * K * N, seed++), bias = randn(N, seed++);
        const withBias = (M + N) % 2 === 0 || transA; // some cases without, to cover HAS_BIAS=false
        const alpha = transB ? 0.75 : 1;
        const out = Tensor.empty([batch * M * N]);
        matmulRaw(Tensor.fromArray(a, [a.length]), Tensor.fromArray(b, [b.length]), out, {
          M, N, K, batch, transA, transB, alpha, variant, bias: withBias ? Tensor.fromArray(bias, [N]) : null,
        });
        const want = matmulRef(a, b, { M, N, K, batch, transA, transB, alpha, bias: withBias ? bias : null });
        assertClose(`${variant} ${tag(transA, transB)} ${batch}x(${M}x${K}x${N})`, await out.toArray(), want, fwdTol);
      }
    }
  }));

  test(`matmulRaw ${variant}: accumulate (C += alpha A·B), strides and offsets`, () => tidy(async () => {
    const [M, K, N, batch] = [13, 21, 10, 2];
    const a = randn(batch * M * K, 40), b = randn(K * N, 41), c0 = randn(batch * M * N, 42);
    // (each accumulate layout is one more pipeline to compile; these are the weight-gradient ones)
    for (const [transA, transB] of [[false, false], [true, false]] as const) {
      const out = Tensor.fromArray(c0, [c0.length]);
      // b shared across the batch (stride 0)
      matmulRaw(Tensor.fromArray(a, [a.length]), Tensor.fromArray(b, [b.length]), out, {
        M, N, K, batch, transA, transB, batchStrideB: 0, accumulate: true, alpha: -0.5, variant,
      });
      const want = matmulRef(a, b, { M, N, K, batch, transA, transB, batchStrideB: 0, alpha: -0.5, accumulateInto: c0 });
      assertClose(`${variant} accumulate ${tag(transA, transB)}`, await out.toArray(), want, fwdTol);
    }
    // offsets: the second batch item of a into the second half of out
    const out = Tensor.zeros([batch * M * N]);
    matmulRaw(Tensor.fromArray(a, [a.length]), Tensor.fromArray(b, [b.length]), out, {
      M, N, K, offsetA: M * K, offsetC: M * N, variant,
    });
    const want = new Float64Array(batch * M * N);
    want.set(matmulRef(a.subarray(M * K), b, { M, N, K }), M * N);
    assertClose(`${variant} offsets`, await out.toArray(), want, fwdTol);
    // K = 0: an empty sum leaves the bias
    const empty = Tensor.empty([3 * 5]);
    matmulRaw(Tensor.zeros([0]), Tensor.zeros([0]), empty, { M: 3, N: 5, K: 0, bias: Tensor.fromArray([1, 2, 3, 4, 5], [5]), variant });
    assertClose(`${variant} K=0`, await empty.toArray(), [1, 2, 3, 4, 5, 1, 2, 3, 4, 5, 1, 2, 3, 4, 5], fwdTol);
  }));

  test(`matmul ${variant}: batched forward and backward against the reference, broadcast operands`, () => tidy(async () => {
    let seed = 100;
    // [aShape, bShape, transA, transB]
    const cases: [number[], number[], boolean, boolean][] = [
      [[3, 26, 35], [3, 35, 17], false, false],
      [[2, 3, 17, 13], [2, 3, 19, 13], false, true],
      [[3, 9, 26], [9, 14], true, false], // b 2-D, a transposed: dB sums batch items one by one
      [[2, 26, 9], [9, 14], false, false], // b 2-D: the batch stacks into rows
      [[26, 9], [3, 14, 9], false, true], // a 2-D
    ];
    for (const [aShape, bShape, transA, transB] of cases) {
      const name = `${variant} [${aShape}]${transA ? 'ᵀ' : ''} x [${bShape}]${transB ? 'ᵀ' : ''}`;
      const aN = aShape.reduce((x, y) => x * y), bN = bShape.reduce((x, y) => x * y);
      const M = transA ? aShape.at(-1)! : aShape.at(-2)!, K = transA ? aShape.at(-2)! : aShape.at(-1)!;
      const N = transB ? bShape.at(-2)! : bShape.at(-1)!;
      const batch = Math.max(aN / (M * K), bN / (K * N));
      const sA = aShape.length === 2 ? 0 : M * K, sB = bShape.length === 2 ? 0 : K * N;
      const a = randn(aN, seed++), b = randn(bN, seed++), bias = randn(N, seed++), g = randn(batch * M * N, seed++);
      const ta = Tensor.fromArray(a, aShape, { requiresGrad: true });
      const tb = Tensor.fromArray(b, bShape, { requiresGrad: true });
      const tbias = Tensor.fromArray(bias, [N], { requiresGrad: true });
      const y = matmul(ta, tb, { transA, transB, bias: tbias, variant });
      const outShape = [...(aShape.length > 2 ? aShape : bShape).slice(0, -2), M, N];
      if (y.shape.join() !== outShape.join()) throw new Error(`${name}: shape [${y.shape}], expected [${outShape}]`);
      const refP = { M, N, K, batch, transA, transB, batchStrideA: sA, batchStrideB: sB };
      assertClose(`${name} forward`, await y.toArray(), matmulRef(a, b, { ...refP, bias }), fwdTol);
      y.backward(Tensor.fromArray(g, y.shape));
      // d op(A) = G op(B)^T and d op(B) = op(A)^T G per batch item, summed where an operand is shared
      const da = new Float64Array(aN), dbW = new Float64Array(bN), dbias = new Float64Array(N);
      for (let i = 0; i < batch; i++) {
        const gi = g.subarray(i * M * N, (i + 1) * M * N);
        const ai = a.subarray(i * sA, i * sA + M * K), bi = b.subarray(i * sB, i * sB + K * N);
        // stored A^T gets (G op(B)^T)^T = op(B) G^T
        const gA = transA
          ? matmulRef(bi, gi, { M: K, N: M, K: N, transA: transB, transB: true })
          : matmulRef(gi, bi, { M, N: K, K: N, transB: !transB });
        const gB = transB
          ? matmulRef(gi, ai, { M: N, N: K, K: M, transA: true, transB: transA })
          : matmulRef(ai, gi, { M: K, N, K: M, transA: !transA });
        gA.forEach((v, j) => (da[i * sA + j] += v));
        gB.forEach((v, j) => (dbW[i * sB + j] += v));
        for (let m = 0; m < M; m++) for (let n = 0; n < N; n++) dbias[n] += gi[m * N + n];
      }
      assertClose(`${name} dA`, await ta.grad!.toArray(), da, gradTol);
      assertClose(`${name} dB`, await tb.grad!.toArray(), dbW, gradTol);
      assertClose(`${name} dbias`, await tbias.grad!.toArray(), dbias, gradTol);
      for (const t of [ta, tb, tbias]) t.grad!.dispose();
    }
  }));
}

test('linear: forward and backward against the reference (ViT-like rows, odd widths)', () => tidy(async () => {
  const [B, T, inF, outF] = [2, 13, 19, 23];
  const rows = B * T;
  const x = randn(rows * inF, 200), w = randn(outF * inF, 201, 0.3), bias = randn(outF, 202), dy = randn(rows * outF, 203);
  const tx = Tensor.fromArray(x, [B, T, inF], { requiresGrad: true });
  const tw = Tensor.fromArray(w, [outF, inF], { requiresGrad: true });
  const tbias = Tensor.fromArray(bias, [outF], { requiresGrad: true });
  const y = linear(tx, tw, tbias);
  if (y.shape.join() !== [B, T, outF].join()) throw new Error(`linear shape [${y.shape}]`);
  assertClose('linear forward', await y.toArray(), linearRef(x, w, bias, rows, inF, outF), fwdTol);
  y.backward(Tensor.fromArray(dy, y.shape));
  const ref = linearBackwardRef(x, w, dy, rows, inF, outF);
  assertClose('linear dx', await tx.grad!.toArray(), ref.dx, gradTol);
  assertClose('linear dW', await tw.grad!.toArray(), ref.dW, gradTol);
  assertClose('linear db', await tbias.grad!.toArray(), ref.db, gradTol);
  for (const t of [tx, tw, tbias]) t.grad!.dispose();
  // no bias, and a 2-D input whose widths are multiples of 4 (the vec4 paths)
  const x2 = randn(17 * 64, 204), w2 = randn(48 * 64, 205, 0.2);
  const y2 = linear(Tensor.fromArray(x2, [17, 64]), Tensor.fromArray(w2, [48, 64]));
  assertClose('linear no bias', await y2.toArray(), linearRef(x2, w2, null, 17, 64, 48), fwdTol);
}));

test('linear and matmul: shape errors name both shapes', () => tidy(() => {
  const x = Tensor.zeros([4, 5]), w = Tensor.zeros([3, 6]), b = Tensor.zeros([5, 2]);
  assert.throws(() => linear(x, w), messageHas('[4,5]', '[3,6]'));
  assert.throws(() => linear(x, Tensor.zeros([3, 5]), Tensor.zeros([4])), messageHas('[4]', '[3,5]'));
  assert.throws(() => matmul(x, Tensor.zeros([4, 2])), messageHas('[4,5]', '[4,2]'));
  assert.throws(() => matmul(Tensor.zeros([2, 4, 5]), Tensor.zeros([3, 5, 2])), messageHas('[2,4,5]', '[3,5,2]'));
  matmul(x, b); // fits
}));

test('finite differences: matmul (both variants, transposes, bias) and linear', async () => {
  const a = randn(3 * 5, 300), b = randn(5 * 4, 301), bias = randn(4, 302);
  for (const variant of variants) {
    await gradCheck(`matmul ${variant}`, [{ data: a, shape: [3, 5] }, { data: b, shape: [5, 4] }, { data: bias, shape: [4] }],
      ([x, y, z]) => matmul(x, y, { bias: z, variant }));
    await gradCheck(`matmul ${variant} TT`, [{ data: a, shape: [5, 3] }, { data: b, shape: [4, 5] }],
      ([x, y]) => matmul(x, y, { transA: true, transB: true, variant }));
  }
  await gradCheck('batched matmul, shared b', [{ data: randn(2 * 3 * 5, 303), shape: [2, 3, 5] }, { data: b, shape: [5, 4] }],
    ([x, y]) => matmul(x, y));
  await gradCheck('linear', [{ data: randn(2 * 3 * 5, 304), shape: [2, 3, 5] }, { data: b, shape: [4, 5] }, { data: bias, shape: [4] }],
    ([x, w, z]) => linear(x, w, z));
});

test('matmulKernel: register reads textures and shares A by shuffles only where subgroups are 8 lanes or wider', () => {
  const withSubgroups = { features: new Set(['subgroups']), subgroupMinSize: 8 };
  const narrow = { features: new Set(['subgroups']), subgroupMinSize: 4 };
  const without = { features: new Set<string>(), subgroupMinSize: 0 };
  assert.equal(matmulKernel('register', withSubgroups), { shader: wgsl.matmul_texture, entry: 'matmul_texture' });
  assert.equal(matmulKernel('register', narrow), { shader: wgsl.matmul, entry: 'matmul_register' });
  assert.equal(matmulKernel('register', without), { shader: wgsl.matmul, entry: 'matmul_register' });
  for (const device of [withSubgroups, narrow, without]) {
    assert.equal(matmulKernel('shared', device), { shader: wgsl.matmul, entry: 'matmul_shared' });
  }
});

/** Head h of image b of a [B, S, H*hd] array, as a dense [S, hd]. */
function headSlice(t: Float32Array, b: number, h: number, S: number, H: number, hd: number): Float32Array {
  const W = H * hd;
  const out = new Float32Array(S * hd);
  for (let s = 0; s < S; s++) out.set(t.subarray(b * S * W + s * W + h * hd, b * S * W + s * W + (h + 1) * hd), s * hd);
  return out;
}

test('matmulRaw register: row pitches and head strides address head slices of [B, S, H*hd]', () => tidy(async () => {
  const [B, S, H, hd] = [2, 9, 3, 8];
  const W = H * hd;
  const x = randn(B * S * W, 300), y = randn(B * S * W, 301);
  const slice = (t: Float32Array, b: number, h: number) => headSlice(t, b, h, S, H, hd);
  const tx = Tensor.fromArray(x, [x.length]), ty = Tensor.fromArray(y, [y.length]);
  const heads = { batch: B * H, heads: H, batchStrideA: S * W, batchStrideB: S * W, headStrideA: hd, headStrideB: hd, ldA: W, ldB: W };
  // x_h y_h^T (S x S per head, packed), then x_h^T y_h (hd x hd) written into head slices of a [B, hd, H*hd]
  const scores = Tensor.empty([B * H * S * S]);
  matmulRaw(tx, ty, scores, { M: S, N: S, K: hd, transB: true, alpha: 0.5, ...heads });
  const gram = Tensor.fromArray(new Float32Array(B * hd * W).fill(7), [B * hd * W]);
  matmulRaw(tx, ty, gram, { M: hd, N: hd, K: S, transA: true, ...heads, ldC: W, batchStrideC: hd * W, headStrideC: hd });
  const gotScores = await scores.toArray(), gotGram = await gram.toArray();
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const xs = slice(x, b, h), ys = slice(y, b, h), z = b * H + h;
      const wantS = matmulRef(xs, ys, { M: S, N: S, K: hd, transB: true, alpha: 0.5 });
      assertClose(`scores b${b} h${h}`, gotScores.subarray(z * S * S, (z + 1) * S * S), wantS, fwdTol);
      const wantG = matmulRef(xs, ys, { M: hd, N: hd, K: S, transA: true });
      const gotG = new Float32Array(hd * hd);
      for (let r = 0; r < hd; r++) gotG.set(gotGram.subarray(b * hd * W + r * W + h * hd, b * hd * W + r * W + (h + 1) * hd), r * hd);
      assertClose(`gram b${b} h${h}`, gotG, wantG, fwdTol);
    }
  }
}));

// matmul_texture (the register variant where subgroups are 8 lanes wide: lavapipe): each operand reaches
// its texture by copyBufferToTexture (rows of a multiple of 64 floats) or pack_operand (all the odd
// shapes above), in all four layouts; K tails are masked in the layouts where K runs down the texture.
test('matmulRaw register: texture operands copied where rows align, packed elsewhere, every layout', () => tidy(async () => {
  const device = Device.default;
  const textures = matmulKernel('register', device).entry === 'matmul_texture';
  let seed = 500;
  // [M, K, N, batch]: all rows aligned (64 or 128 floats); then A's only where not transposed (b's always);
  // then K = 65 (a tail of one)
  for (const [M, K, N, batch] of [[64, 64, 128, 2], [7, 128, 64, 2], [70, 65, 64, 1]] as const) {
    for (const [transA, transB] of transposes) {
      const a = randn(batch * M * K, seed++), b = randn(batch * K * N, seed++), bias = randn(N, seed++);
      const out = Tensor.empty([batch * M * N]);
      const copies0 = device.copyCount, dispatches0 = device.dispatchCount;
      matmulRaw(Tensor.fromArray(a, [a.length]), Tensor.fromArray(b, [b.length]), out, {
        M, N, K, batch, transA, transB, alpha: 0.5, variant: 'register', bias: Tensor.fromArray(bias, [N]),
      });
      const name = `${tag(transA, transB)} ${batch}x(${M}x${K}x${N})`;
      if (textures && M === 64) {
        assert.is(device.copyCount - copies0, 2 * batch, `${name}: every item of both operands copied`);
        assert.is(device.dispatchCount - dispatches0, 1, `${name}: no pack_operand`);
      }
      if (textures && M === 7) assert.is(device.copyCount - copies0, (transA ? 0 : batch) + batch, `${name}: copies`);
      const want = matmulRef(a, b, { M, N, K, batch, transA, transB, alpha: 0.5, bias });
      assertClose(`texture ${name}`, await out.toArray(), want, fwdTol);
    }
  }
  // rows padded to a 256-byte pitch (attention's scores): copied rounded up to whole texels, so NaN padding
  // lands in the textures past K (masked) or past M and N (not stored)
  const [M, K, N, ld] = [9, 61, 10, 64];
  for (const [transA, transB] of transposes) {
    const a = randn(M * K, seed++), b = randn(K * N, seed++);
    const padded = (x: Float32Array, rows: number, cols: number) => {
      const p = new Float32Array(rows * ld).fill(NaN);
      for (let r = 0; r < rows; r++) p.set(x.subarray(r * cols, (r + 1) * cols), r * ld);
      return Tensor.fromArray(p, [p.length]);
    };
    const out = Tensor.empty([M * N]);
    const copies0 = device.copyCount;
    matmulRaw(padded(a, transA ? K : M, transA ? M : K), padded(b, transB ? N : K, transB ? K : N), out, {
      M, N, K, transA, transB, ldA: ld, ldB: ld, variant: 'register',
    });
    if (textures) assert.is(device.copyCount - copies0, 2, `padded ${tag(transA, transB)}: both operands copied`);
    assertClose(`texture padded rows ${tag(transA, transB)}`, await out.toArray(), matmulRef(a, b, { M, N, K, transA, transB }), fwdTol);
  }
}));

test('matmulRaw register: products taller than the texture split into K slices, row blocks and runs of items', () => tidy(async () => {
  const textureRows = matmulConfig.textureRows;
  try {
    // K slices (accumulated, bias once) and row blocks, with operands down the texture either way
    matmulConfig.textureRows = 24;
    let seed = 600;
    for (const [M, K, N, transA, transB] of [[10, 53, 12, true, false], [10, 53, 12, false, false], [53, 6, 7, false, true], [53, 6, 7, true, true]] as const) {
      const a = randn(M * K, seed++), b = randn(K * N, seed++), bias = randn(N, seed++), c0 = randn(M * N, seed++);
      const out = Tensor.fromArray(c0, [c0.length]);
      matmulRaw(Tensor.fromArray(a, [a.length]), Tensor.fromArray(b, [b.length]), out, {
        M, N, K, transA, transB, alpha: 0.5, accumulate: true, variant: 'register', bias: Tensor.fromArray(bias, [N]),
      });
      const want = matmulRef(a, b, { M, N, K, transA, transB, alpha: 0.5, bias, accumulateInto: c0 });
      assertClose(`split ${tag(transA, transB)} ${M}x${K}x${N}`, await out.toArray(), want, fwdTol);
    }
    // runs of whole (image, heads) groups (fit 4 items, 2 heads), and runs of heads within a group
    // (fit 2 items, 4 heads): per-head products of [B, S, H*hd] slices, C packed [B*H, S, S]
    for (const [rows, H] of [[24, 2], [12, 4]] as const) {
      matmulConfig.textureRows = rows;
      const [B, S, hd] = [3, 5, 6];
      const W = H * hd;
      const x = randn(B * S * W, seed++), y = randn(B * S * W, seed++);
      const scores = Tensor.empty([B * H * S * S]);
      matmulRaw(Tensor.fromArray(x, [x.length]), Tensor.fromArray(y, [y.length]), scores, {
        M: S, N: S, K: hd, transB: true, batch: B * H, heads: H, variant: 'register',
        batchStrideA: S * W, batchStrideB: S * W, headStrideA: hd, headStrideB: hd, ldA: W, ldB: W,
      });
      const got = await scores.toArray();
      for (let z = 0; z < B * H; z++) {
        const [bi, h] = [Math.floor(z / H), z % H];
        const want = matmulRef(headSlice(x, bi, h, S, H, hd), headSlice(y, bi, h, S, H, hd), { M: S, N: S, K: hd, transB: true });
        assertClose(`runs (texture rows ${rows}, ${H} heads) item ${z}`, got.subarray(z * S * S, (z + 1) * S * S), want, fwdTol);
      }
    }
  } finally {
    matmulConfig.textureRows = textureRows;
  }
}));

test("matmulRaw shared, subgroup4: GPU adapters' K slices (partial products, then their sum) at every transpose, a trailing short slice, alpha and accumulate", () => tidy(async () => {
  let seed = 700;
  // [M, K, N, splits]: K a multiple of the slice, a short last slice, K not a multiple of 4, more slices than fit
  for (const [M, K, N, splits] of [[13, 64, 10, 4], [7, 203, 9, 5], [20, 37, 3, 3], [5, 6, 6, 6]] as const) {
    for (const variant of ['shared', 'subgroup4'] as const) {
      for (const [transA, transB] of transposes) {
        const a = randn(M * K, seed++), b = randn(K * N, seed++), c0 = randn(M * N, seed++);
        const out = Tensor.fromArray(c0, [c0.length]);
        const accumulate = (M + K) % 2 === 1;
        matmulRaw(Tensor.fromArray(a, [a.length]), Tensor.fromArray(b, [b.length]), out, {
          M, N, K, transA, transB, alpha: 0.5, accumulate, variant, splitK: splits,
        });
        const want = matmulRef(a, b, { M, N, K, transA, transB, alpha: 0.5, accumulateInto: accumulate ? c0 : undefined });
        assertClose(`${variant} split-K ${splits} ${tag(transA, transB)} ${M}x${K}x${N}`, await out.toArray(), want, fwdTol);
      }
    }
  }
  // matmulConfig.splitK forces the slices on a CPU adapter for the products that would take them on a GPU
  const splitK = matmulConfig.splitK;
  try {
    matmulConfig.splitK = 4;
    const [R, I, O] = [197, 24, 10];
    const x = randn(R * I, seed++), dy = randn(R * O, seed++);
    const dW = Tensor.empty([O * I]);
    const dyT = Tensor.fromArray(dy, [dy.length]), xT = Tensor.fromArray(x, [x.length]);
    const entries = dispatchedEntries(Device.default, () => matmulRaw(dyT, xT, dW, { M: O, N: I, K: R, transA: true, variant: 'shared' }));
    assert.equal(entries, ['matmul:matmul_shared', 'matmul:matmul_shared', 'reduce:sum_rows'], '4 slices of 50 rows: 3 as a batch, the short last one, the sum');
    assertClose('dW = dy^T x in 4 K slices', await dW.toArray(), matmulRef(dy, x, { M: O, N: I, K: R, transA: true }), fwdTol);
  } finally {
    matmulConfig.splitK = splitK;
  }
}));

test('splitKCount: GPU adapters split long-K products with few output tiles, into a count that divides K where one is near; CPU adapters never', () => {
  for (const [M, N, K] of [[192, 192, 1576], [192, 192, 12608], [768, 192, 1576], [192, 768, 12608], [10, 10, 997], [1576, 768, 192], [2048, 2048, 4096]]) {
    assert.is(splitKCount(true, M, N, K), 1, 'CPU');
    const s = splitKCount(false, M, N, K);
    const tiles = Math.ceil(M / 64) * Math.ceil(N / 64);
    const target = Math.max(1, Math.min(Math.floor(K / 256), Math.ceil(256 / tiles)));
    assert.ok(s >= 1 && s <= target && s >= Math.ceil(target / 2), `${M}x${N}x${K}: ${s} slices, target ${target}`);
    const divisor = [...Array(target - Math.ceil(target / 2) + 1).keys()].map((i) => target - i).find((d) => d > 1 && K % d === 0);
    assert.is(s, divisor ?? target, `${M}x${N}x${K}`);
  }
  assert.is(splitKCount(false, 192, 192, 1576), 4, 'ViT-Ti batch 8 dW: 4 slices of 394 rows, none shorter');
});

test('matmul_texture: 64-row workgroups for products of 100 MFLOP or more unless they waste over 10 % more rows than 32-row ones; both give the same bits', () => tidy(async () => {
  const device = Tensor.empty([1]).device;
  for (const M of [1, 8, 31, 33, 64, 65, 197, 1576, 4160]) {
    const rows = (g: number) => Math.ceil(M / (8 * g)) * 8 * g;
    assert.is(textureRowGroups(M, 768, 192), 2 * M * 768 * 192 >= 1e8 && rows(8) <= 1.1 * rows(4) ? 8 : 4, `M=${M}`);
    assert.is(textureRowGroups(M, 4, 4), 4, `M=${M}, a small product`);
  }
  // ViT-Ti's products at batch 8 (rows 1576): forward, dX and dW of the MLP and attention linears
  for (const [M, N, K] of [[1576, 768, 192], [1576, 192, 768], [768, 192, 1576], [192, 768, 1576], [192, 192, 1576], [1576, 192, 192]]) {
    assert.is(textureRowGroups(M, N, K), 8, `${M}x${N}x${K}`);
  }
  assert.ok(textureRowGroups(197, 768, 192) === 4 && textureRowGroups(4160, 128, 128) === 8, 'both sizes occur');
  if (matmulKernel('register', device).entry !== 'matmul_texture') return;
  // Each output is one fma chain over k in order, whatever the workgroup's rows: the first 197 rows of a
  // 1576-row product (64-row workgroups) equal, bit for bit, the 197-row product (32-row ones), at every
  // transpose and with the bias sums of A beside dW
  const [M, K, N] = [1576, 160, 200];
  assert.ok(textureRowGroups(M, N, K) === 8 && textureRowGroups(197, N, K) === 4);
  let seed = 1900;
  for (const [transA, transB] of transposes) {
    const a = randn(M * K, seed++), b = randn(K * N, seed++);
    const head = new Float32Array(197 * K);
    for (let m = 0; m < 197; m++) for (let k = 0; k < K; k++) head[m * K + k] = transA ? a[k * M + m] : a[m * K + k];
    const headStored = transA ? Float32Array.from({ length: 197 * K }, (_, i) => head[(i % 197) * K + Math.floor(i / 197)]) : head;
    const sums = [Tensor.zeros([M]), Tensor.zeros([197])];
    const full = Tensor.empty([M * N]), part = Tensor.empty([197 * N]);
    matmulRaw(Tensor.fromArray(a, [a.length]), Tensor.fromArray(b, [b.length]), full, { M, N, K, transA, transB, variant: 'register', sumA: transA ? sums[0] : null });
    matmulRaw(Tensor.fromArray(headStored, [headStored.length]), Tensor.fromArray(b, [b.length]), part, { M: 197, N, K, transA, transB, variant: 'register', sumA: transA ? sums[1] : null });
    const got = await full.toArray();
    assert.equal(Buffer.from(got.subarray(0, 197 * N).buffer.slice(0, 197 * N * 4)), Buffer.from((await part.toArray()).buffer), `${tag(transA, transB)}: rows 0..196`);
    assertClose(`${tag(transA, transB)} 1576 rows`, got, matmulRef(a, b, { M, N, K, transA, transB }), fwdTol);
    if (transA) {
      const s = await sums[0].toArray();
      assert.equal(Buffer.from(s.buffer.slice(0, 197 * 4)), Buffer.from((await sums[1].toArray()).buffer), 'sums of A, rows 0..196');
    }
  }
}));

test('matmulRaw register: a full scratch-texture cache is emptied before a product, never within one', () => tidy(async () => {
  const device = Device.default;
  const limit = scratchTextureConfig.limitBytes;
  try {
    // a limit below one product's textures: each new shape empties the cache (after submitting the work
    // that used it) and then holds just its own two textures
    scratchTextureConfig.limitBytes = 1;
    releaseScratchTextures(device); // (earlier tests may have left textures of these very shapes)
    let seed = 700;
    for (const [M, K, N] of [[20, 12, 8], [33, 40, 24], [20, 12, 8], [7, 5, 3]] as const) {
      const a = randn(M * K, seed++), b = randn(K * N, seed++);
      const out = Tensor.empty([M * N]);
      matmulRaw(Tensor.fromArray(a, [a.length]), Tensor.fromArray(b, [b.length]), out, { M, N, K, variant: 'register' });
      if (matmulKernel('register', device).entry === 'matmul_texture') {
        assert.is(scratchTextureBytes(device), (Math.ceil(K / 4) * M + Math.ceil(N / 4) * K) * 16, `${M}x${K}x${N}: only this product's textures`);
      }
      assertClose(`small cache ${M}x${K}x${N}`, await out.toArray(), matmulRef(a, b, { M, N, K }), fwdTol);
    }
  } finally {
    scratchTextureConfig.limitBytes = limit;
  }
}));

test('device without subgroups: skips matmul_texture.wgsl, runs the plain register kernel and linear', async () => {
  const device = await Device.create({ disableFeatures: ['subgroups'] });
  try {
    assert.not.ok(device.features.has('subgroups'));
    assert.throws(() => device.pipeline(wgsl.matmul_texture, 'matmul_texture'),
      /shaders\/matmul_texture\.wgsl needs the WebGPU feature 'subgroups', which this device lacks/);
    await tidy(async () => {
      const on = { device };
      let seed = 400;
      // the plain register kernel (pipelines are slow to build on lavapipe, so each layout once; the epilogue
      // it shares with the texture kernel is covered above): odd K and N (scalar B loads), then multiples
      // of 4 (the vec4 paths), both ways of reading A. The linear below adds NN with vec4 loads.
      const cases = [[17, 26, 13, 1, false, false], [17, 26, 13, 1, true, true], [9, 12, 40, 2, false, true], [9, 12, 40, 2, true, false]] as const;
      for (const [M, K, N, batch, transA, transB] of cases) {
        const a = randn(batch * M * K, seed++), b = randn(batch * K * N, seed++), bias = randn(N, seed++);
        const out = Tensor.empty([batch * M * N], on);
        matmulRaw(Tensor.fromArray(a, [a.length], on), Tensor.fromArray(b, [b.length], on), out, {
          M, N, K, batch, transA, transB, alpha: 0.75, variant: 'register', bias: Tensor.fromArray(bias, [N], on),
        });
        const want = matmulRef(a, b, { M, N, K, batch, transA, transB, alpha: 0.75, bias });
        assertClose(`no subgroups register ${tag(transA, transB)} ${batch}x(${M}x${K}x${N})`, await out.toArray(), want, fwdTol);
      }
      // linear with the device's default variant ('register' on lavapipe), forward and backward
      const [rows, inF, outF] = [13, 20, 23];
      const x = randn(rows * inF, 410), w = randn(outF * inF, 411, 0.3), bias = randn(outF, 412), dy = randn(rows * outF, 413);
      const tx = Tensor.fromArray(x, [rows, inF], { ...on, requiresGrad: true });
      const tw = Tensor.fromArray(w, [outF, inF], { ...on, requiresGrad: true });
      const y = linear(tx, tw, Tensor.fromArray(bias, [outF], on));
      assertClose('no subgroups linear forward', await y.toArray(), linearRef(x, w, bias, rows, inF, outF), fwdTol);
      y.backward(Tensor.fromArray(dy, y.shape, on));
      const ref = linearBackwardRef(x, w, dy, rows, inF, outF);
      assertClose('no subgroups linear dx', await tx.grad!.toArray(), ref.dx, gradTol);
      assertClose('no subgroups linear dW', await tw.grad!.toArray(), ref.dW, gradTol);
      for (const t of [tx, tw]) t.grad!.dispose();
    });
  } finally {
    device.destroy();
  }
});

test.run();
