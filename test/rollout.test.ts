// Attention rollout (src/train/inference.ts) against a float64 reference written as plain matrix
// algebra: R = Â_L ... Â_1 with Â = rownorm(mean_heads(A) + I), the CLS row over the patches,
// min-max scaled. Random (softmax) attention, so that every step of it shows in the result.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { attentionRollout } from '../src/train/inference.ts';
import { assertClose, randn } from './helpers.ts';

type Matrix = number[][];

const matmul = (a: Matrix, b: Matrix): Matrix => a.map((row) => b[0].map((_, j) => row.reduce((s, v, k) => s + v * b[k][j], 0)));
const identity = (n: number): Matrix => Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => (i === j ? 1 : 0)));

function rolloutRef(layers: Float32Array[], heads: number, T: number): number[] {
  let r = identity(T);
  for (const probs of layers) {
    const a = identity(T).map((row, i) => row.map((v, j) => {
      let mean = 0;
      for (let h = 0; h < heads; h++) mean += probs[(h * T + i) * T + j] / heads;
      return v + mean;
    }));
    const normalised = a.map((row) => row.map((v) => v / row.reduce((s, x) => s + x, 0)));
    r = matmul(normalised, r);
  }
  const cls = r[0].slice(1);
  const lo = Math.min(...cls), hi = Math.max(...cls);
  return cls.map((v) => (v - lo) / (hi - lo));
}

/** [heads, T, T] attention probabilities: a softmax over each row of seeded logits. */
function randomAttention(heads: number, T: number, seed: number): Float32Array {
  const logits = randn(heads * T * T, seed, 2);
  const out = new Float32Array(heads * T * T);
  for (let row = 0; row < heads * T; row++) {
    const x = logits.subarray(row * T, (row + 1) * T);
    const max = Math.max(...x);
    const e = Array.from(x, (v) => Math.exp(v - max));
    const sum = e.reduce((s, v) => s + v, 0);
    e.forEach((v, j) => (out[row * T + j] = v / sum));
  }
  return out;
}

test('attention rollout of random attention matches the matrix-product reference (3 layers, 2 heads, 3x3 patches)', () => {
  const heads = 2, T = 10;
  const layers = [1, 2, 3].map((seed) => randomAttention(heads, T, seed));
  const got = attentionRollout(layers, heads, T);
  assert.is(got.length, T - 1);
  assertClose('rollout', got, rolloutRef(layers, heads, T), { relL2: 1e-6, nmax: 1e-6 });
  assert.is(Math.min(...got), 0);
  assert.is(Math.max(...got), 1);
});

test.run();
