// The tape's contract with its users: a graph is backpropagated once (then its saved tensors are
// freed, as in PyTorch), leaves accumulate over separate graphs, and a failed call leaks nothing.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Tensor, tidy, disposeOnThrow } from '../src/tensor.ts';
import { mul, tanh } from '../src/ops/elementwise.ts';
import { sum } from '../src/ops/reduce.ts';

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

test.run();
