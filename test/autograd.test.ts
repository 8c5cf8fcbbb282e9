// The tape's contract with its users: a graph is backpropagated once (then its saved tensors are
// freed, as in PyTorch), leaves accumulate over separate graphs, a failed call leaks nothing, and an
// op that adds an input's pending gradient in its own kernel (layerNorm) gives the tape's sums.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Tensor, tidy, disposeOnThrow } from '../src/tensor.ts';
import { autogradConfig, noGrad, record } from '../src/autograd.ts';
import { Device } from '../src/gpu/device.ts';
import { add, copy, mul, tanh } from '../src/ops/elementwise.ts';
import { sum } from '../src/ops/reduce.ts';
import { layerNorm } from '../src/ops/layernorm.ts';
import { linearResidual } from '../src/ops/fused.ts';
import { linear } from '../src/ops/matmul.ts';
import { assertClose, gradCheck, randn } from './helpers.ts';

const SECOND_TIME = /backward\(\): trying to backward through the graph a second time/;

test('backward() twice through the same graph throws, and changes no gradient', () => tidy(async () => {
  const x = Tensor.fromArray([0.5, -1, 2], [3], { requiresGrad: true });
  const loss = sum(mul(tanh(x), x));
  loss.backward();
  const first = await x.grad!.toArray();
  assert.throws(() => loss.backward(), SECOND_TIME);
  assert.equal(await x.grad!.toArray(), first);
  assert.is(loss.grad, null, 'the root got no gradient of its own');
  x.grad!.dispose();
}));

test('backward() through a part of a graph that an earlier backward() freed throws', () => tidy(() => {
  const x = Tensor.fromArray([0.5, -1, 2], [3], { requiresGrad: true });
  const h = tanh(x);
  sum(h).backward();
  const again = sum(mul(h, h));
  assert.throws(() => again.backward(), SECOND_TIME);
  x.grad!.dispose();
}));

test('separate graphs from the same leaf accumulate into its gradient, as in torch', () => tidy(async () => {
  const x = Tensor.fromArray([0.5, -1, 2], [3], { requiresGrad: true });
  sum(mul(x, x)).backward(); // 2x
  sum(mul(x, x)).backward(); // + 2x
  assert.equal(Array.from(await x.grad!.toArray()), [2, -4, 8]);
  x.grad!.dispose();
}));

test('disposeOnThrow: a failed call frees what it made; a successful one changes nothing', async () => {
  const x = Tensor.fromArray([1, 2, 3], [3]);
  const before = Tensor.liveCount;
  assert.throws(() => disposeOnThrow(() => {
    tanh(mul(x, x));
    throw new Error('late failure');
  }), /late failure/);
  assert.is(Tensor.liveCount, before, 'intermediates of the failed call were freed');
  // success outside any scope: result and intermediates stay alive, as without the wrapper
  let inner: Tensor | null = null;
  const y = disposeOnThrow(() => tanh((inner = mul(x, x))));
  assert.ok(!y.disposed && !inner!.disposed);
  y.dispose();
  inner!.dispose();
  // success inside tidy: what it made belongs to the tidy scope, which frees all but its result
  const kept = tidy(() => disposeOnThrow(() => tanh(mul(x, x))));
  assert.is(Tensor.liveCount, before + 1, 'only the result outlives tidy');
  kept.dispose();
  x.dispose();
  assert.is(Tensor.liveCount, before - 1);
});

// h feeds layerNorm and another op, in graphs where the tape runs the other op's backward first
// (layerNorm adds its gradient in-kernel) or last (the tape adds as before); h a leaf or computed.
const rows = 5, d = 13;
const inputs = {
  x: { data: randn(rows * d, 1), shape: [rows, d] }, w: { data: randn(d, 2, 0.3).map((v) => v + 1), shape: [d] },
  b: { data: randn(d, 3, 0.3), shape: [d] }, W: { data: randn(d * d, 5, 0.3), shape: [d, d] },
};
const c = randn(rows * d, 4);
const mulC = (h: Tensor) => mul(h, Tensor.fromArray(c, [rows, d]));
/** graphs of the leaves x, w, b (and W); `fusions`: layerNorms whose backward finds a pending gradient */
const graphs: { name: string; fusions: number; leaves: (keyof typeof inputs)[]; f: (t: Tensor[]) => Tensor }[] = [
  { name: 'add(layerNorm(h), mul(h, c)), h = tanh(x)', fusions: 1, leaves: ['x', 'w', 'b'], f: ([x, w, b]) => {
    const h = tanh(x);
    return add(layerNorm(h, w, b, 1e-5), mulC(h));
  } },
  { name: 'add(mul(h, c), layerNorm(h)), h = tanh(x)', fusions: 0, leaves: ['x', 'w', 'b'], f: ([x, w, b]) => {
    const h = tanh(x);
    return add(mulC(h), layerNorm(h, w, b, 1e-5));
  } },
  { name: 'linearResidual(layerNorm(x), W, b, residual x), x a leaf', fusions: 1, leaves: ['x', 'w', 'b', 'W'],
    f: ([x, w, b, W]) => linearResidual(layerNorm(x, w, b, 1e-5), W, b, x) },
  // the residual's pending gradient is a view of the linearResidual's output gradient here
  { name: 'pre-LN block on h = tanh(x): h1 = h + W LN(h), then h1 + W LN(h1)', fusions: 2, leaves: ['x', 'w', 'b', 'W'], f: ([x, w, b, W]) => {
    const h = tanh(x);
    const h1 = linearResidual(layerNorm(h, w, b, 1e-5), W, b, h);
    return linearResidual(layerNorm(h1, w, b, 1e-5), W, null, h1);
  } },
  // q, k and v of one LayerNorm output: the two linears that run after the first add theirs in the epilogue
  { name: 'linear(h, W) + linear(h, W) + linear(h, W), h = tanh(x)', fusions: 2, leaves: ['x', 'W', 'b'], f: ([x, W, b]) => {
    const h = tanh(x);
    return add(add(linear(h, W, b), linear(h, W)), linear(h, W, b));
  } },
];

/** The leaves' gradients of f's output with a seeded output gradient, and the dispatches of backward(). */
function gradsOf({ leaves: names, f }: (typeof graphs)[number], accumulate: boolean) {
  const prev = autogradConfig.accumulate;
  autogradConfig.accumulate = accumulate;
  try {
    return tidy(async () => {
      const leaves = names.map((n) => Tensor.fromArray(inputs[n].data, inputs[n].shape, { requiresGrad: true }));
      const y = f(leaves);
      const device = Device.default;
      const before = device.dispatchCount;
      y.backward(Tensor.fromArray(randn(rows * d, 6), [rows, d]));
      const dispatches = device.dispatchCount - before;
      const grads = await Promise.all(leaves.map((t) => t.grad!.toArray()));
      for (const t of leaves) t.grad!.dispose();
      return { grads, dispatches };
    });
  } finally {
    autogradConfig.accumulate = prev;
  }
}

test('layerNorm and linear add their input\'s pending gradient in-kernel: the tape\'s gradients, one add dispatch fewer per fused op, same bits run to run', async () => {
  for (const graph of graphs) {
    const unfused = await gradsOf(graph, false);
    const a = await gradsOf(graph, true);
    const b = await gradsOf(graph, true);
    assert.is(unfused.dispatches - a.dispatches, graph.fusions, `${graph.name}: dispatches saved`);
    a.grads.forEach((g, i) => {
      assertClose(`${graph.name}: gradient of ${graph.leaves[i]}`, g, unfused.grads[i], { relL2: 1e-6, nmax: 1e-6 });
      assert.equal(g, b.grads[i], `${graph.name}: gradient of ${graph.leaves[i]} differs between two runs`);
    });
  }
});

test('finite differences through a tensor feeding layerNorm and another op (both tape orders)', async () => {
  for (const { name, leaves, f } of graphs) {
    await gradCheck(name, leaves.map((n) => inputs[n]), f, { eps: 1e-2, tol: 2e-2 });
  }
});

test('an op given the same tensor twice gets no pending gradient for it (it would be counted twice)', () => tidy(async () => {
  const n = 6;
  const xs = randn(n, 8), cs = randn(n, 9), dy = randn(n, 10);
  const x = Tensor.fromArray(xs, [n], { requiresGrad: true });
  // y = x + x, whose backward adds the pending gradient of its second input
  const twice = (a: Tensor, b: Tensor) => record(noGrad(() => add(a, b)), 'twice', [a, b], (g, pending) => {
    const p = pending?.[1];
    return [copy(g), p ? add(p, g) : copy(g)];
  }, [], [1]);
  // mul's backward runs before twice's: x has a pending gradient dy * c by then
  add(twice(x, x), mul(x, Tensor.fromArray(cs, [n]))).backward(Tensor.fromArray(dy, [n]));
  assertClose('dx', await x.grad!.toArray(), dy.map((g, i) => 2 * g + g * cs[i]), { relL2: 1e-6, nmax: 1e-6 });
  x.grad!.dispose();
}));

test.run();
