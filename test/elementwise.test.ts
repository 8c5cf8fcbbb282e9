import { test } from 'uvu';
import { Tensor, tidy } from '../src/tensor.ts';
import { add, gelu, tanh, dropout, scale, mul } from '../src/ops/elementwise.ts';
import { sum, sumRows, sumRowsRaw, reduceConfig } from '../src/ops/reduce.ts';
import { assertClose, assertOp, gradCheck, randn } from './helpers.ts';
import { geluRef, geluGradRef } from '../src/ref/elementwise.ts';

const tol = { relL2: 1e-6, nmax: 2e-6 };

test('gelu forward and backward match the exact-erf reference', () => assertOp({
  name: 'gelu', shapes: [1, 17, 1003, 70000 * 4 + 3], label: (n) => `n=${n}`,
  tol: { y: tol, dx: { relL2: 2e-6, nmax: 4e-6 } },
  prepare(n: number) {
    const x = randn(n, n, 2), dy = randn(n, n + 1);
    return {
      async op() {
        const xt = Tensor.fromArray(x, [n], { requiresGrad: true });
        const y = gelu(xt);
        y.backward(Tensor.fromArray(dy, [n]));
        const out = { y: await y.toArray(), dx: await xt.grad!.toArray() };
        xt.grad!.dispose();
        return out;
      },
      reference: () => ({ y: Float64Array.from(x, geluRef), dx: Float64Array.from(x, (v, i) => dy[i] * geluGradRef(v)) }),
    };
  },
}));

test('tanh, add, mul, scale: forward and finite differences', async () => {
  const a = randn(37, 1), b = randn(37, 2);
  const ta = Tensor.fromArray(a, [37]), tb = Tensor.fromArray(b, [37]);
  assertClose('tanh', await tidy(() => tanh(ta)).toArray(), a.map(Math.tanh), tol);
  assertClose('add', await tidy(() => add(ta, tb)).toArray(), a.map((v, i) => v + b[i]), tol);
  assertClose('mul', await tidy(() => mul(ta, tb)).toArray(), a.map((v, i) => v * b[i]), tol);
  assertClose('scale', await tidy(() => scale(ta, -2.5)).toArray(), a.map((v) => -2.5 * v), tol);
  ta.dispose(); tb.dispose();
  await gradCheck('tanh', [{ data: a, shape: [37] }], ([x]) => tanh(x));
  await gradCheck('gelu', [{ data: a, shape: [37] }], ([x]) => gelu(x));
  await gradCheck('mul', [{ data: a, shape: [37] }, { data: b, shape: [37] }], ([x, y]) => mul(x, y));
  await gradCheck('scale', [{ data: a, shape: [37] }], ([x]) => scale(x, -2.5));
  await gradCheck('sumRows', [{ data: randn(5 * 7, 3), shape: [5, 7] }], ([x]) => sumRows(x));
});

test('sum and sumRows match a sequential reference', () => tidy(async () => {
  const x = randn(197 * 13, 4);
  const t = Tensor.fromArray(x, [197, 13]);
  const s = await sum(t).item();
  const ref = x.reduce((a, b) => a + b, 0);
  if (Math.abs(s - ref) > 1e-4 * Math.max(1, Math.abs(ref))) throw new Error(`sum ${s} vs ${ref}`);
  const cols = new Float32Array(13);
  for (let r = 0; r < 197; r++) for (let c = 0; c < 13; c++) cols[c] += x[r * 13 + c];
  assertClose('sumRows', await sumRows(t).toArray(), cols, tol);
}));

test("GPU adapters' two-pass column sums (64-row partials, then their sum) match a float64 reference, alpha and beta too", async () => {
  reduceConfig.chunkedColumnSums = true;
  try {
    for (const [rows, cols] of [[1, 5], [63, 3], [64, 7], [65, 190], [1576, 192], [64 * 64 + 5, 3]]) await tidy(async () => {
      const x = randn(rows * cols, rows + cols), prev = randn(cols, 7);
      const into = Tensor.fromArray(prev, [cols]);
      sumRowsRaw(Tensor.fromArray(x, [rows, cols]), cols, 0.5, into, 1);
      const ref = new Float64Array(cols);
      for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) ref[c] += x[r * cols + c];
      assertClose(`sumRows ${rows}x${cols}`, await into.toArray(), ref.map((v, c) => 0.5 * v + prev[c]), { relL2: 2e-6, nmax: 1e-5 });
    });
  } finally {
    delete reduceConfig.chunkedColumnSums;
  }
});

test('dropout keeps about 1-p, scales by 1/(1-p), and backward uses the same mask', () => tidy(async () => {
  const n = 10000;
  const x = Tensor.fromArray(new Float32Array(n).fill(1), [n], { requiresGrad: true });
  const y = dropout(x, 0.25, 1234);
  const yv = await y.toArray();
  const kept = yv.filter((v) => v !== 0).length;
  if (Math.abs(kept / n - 0.75) > 0.02) throw new Error(`kept fraction ${kept / n}`);
  for (const v of yv) if (v !== 0 && Math.abs(v - 4 / 3) > 1e-6) throw new Error(`kept value ${v}`);
  y.backward(Tensor.fromArray(new Float32Array(n).fill(1), [n]));
  const g = await x.grad!.toArray();
  for (let i = 0; i < n; i++) if (g[i] !== yv[i]) throw new Error(`mask differs at ${i}`);
  const again = await dropout(x, 0.25, 1234).toArray();
  if (again.some((v, i) => v !== yv[i])) throw new Error('same seed gave another mask');
  x.grad!.dispose();
}));

test.run();
