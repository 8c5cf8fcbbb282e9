import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Tensor, tidy } from '../src/tensor.ts';
import { crossEntropy, softmax } from '../src/ops/loss.ts';
import { scale } from '../src/ops/elementwise.ts';
import { crossEntropyRef, crossEntropyBackwardRef, softmaxRef } from '../src/ref/loss.ts';
import { assertClose, gradCheck, messageHas, randn, rng } from './helpers.ts';

const gradTol = { relL2: 5e-6, nmax: 2e-5 };

function assertScalar(name: string, got: number, want: number, rel = 1e-6): void {
  if (!(Math.abs(got - want) <= rel * Math.max(1, Math.abs(want)))) {
    throw new Error(`${name}: got ${got}, expected ${want} (rel ${(Math.abs(got - want) / Math.abs(want)).toExponential(2)})`);
  }
}

function randomLabels(batch: number, numLabels: number, seed: number): number[] {
  const r = rng(seed);
  return Array.from({ length: batch }, () => Math.floor(r() * numLabels));
}

type LabelKind = 'array' | 'int32array' | 'tensor';
const cases: { batch: number; numLabels: number; smoothing: number; kind: LabelKind; offset?: number }[] = [
  { batch: 1, numLabels: 2, smoothing: 0, kind: 'array' },
  { batch: 17, numLabels: 2, smoothing: 0.1, kind: 'int32array' },
  { batch: 26, numLabels: 1000, smoothing: 0, kind: 'tensor' },
  { batch: 197, numLabels: 37, smoothing: 0.2, kind: 'array' },
  { batch: 3, numLabels: 1, smoothing: 0, kind: 'array' },
  { batch: 9, numLabels: 5, smoothing: 1, kind: 'tensor' },
  { batch: 8, numLabels: 10, smoothing: 0.1, kind: 'array', offset: 1e4 }, // needs the max shift
];

for (const { batch, numLabels, smoothing, kind, offset = 0 } of cases) {
  test(`crossEntropy [${batch}, ${numLabels}], smoothing ${smoothing}, ${kind} labels${offset ? `, logits + ${offset}` : ''}`, () => tidy(async () => {
    const x = randn(batch * numLabels, batch * 31 + numLabels, 3).map((v) => v + offset);
    const labels = randomLabels(batch, numLabels, batch);
    const labelArg = kind === 'array' ? labels
      : kind === 'int32array' ? Int32Array.from(labels)
      : Tensor.fromArray(Int32Array.from(labels), [batch]);
    const logits = Tensor.fromArray(x, [batch, numLabels], { requiresGrad: true });
    const loss = crossEntropy(logits, labelArg, { labelSmoothing: smoothing });
    if (loss.shape.join() !== '1') throw new Error(`loss shape [${loss.shape}]`);
    const dloss = 2.5;
    loss.backward(Tensor.fromArray([dloss], [1]));
    // with logits near 1e4 the float32 inputs themselves carry ~1e-3 absolute error in log-probs
    assertScalar('loss', await loss.item(), crossEntropyRef(x, labels, batch, numLabels, smoothing), offset ? 1e-5 : 1e-6);
    const want = crossEntropyBackwardRef(x, labels, batch, numLabels, smoothing, dloss);
    if (numLabels === 1) {
      const g = await logits.grad!.toArray();
      if (g.some((v) => v !== 0)) throw new Error(`one label: dlogits should be 0, got ${g}`);
    } else {
      assertClose('dlogits', await logits.grad!.toArray(), want, gradTol);
    }
    logits.grad!.dispose();
  }));
}

test('crossEntropy reads dloss on the GPU (a scaled loss gives scaled gradients)', () => tidy(async () => {
  const batch = 6, numLabels = 3;
  const x = randn(batch * numLabels, 9);
  const labels = randomLabels(batch, numLabels, 4);
  const logits = Tensor.fromArray(x, [batch, numLabels], { requiresGrad: true });
  const loss = scale(crossEntropy(logits, labels), -0.75);
  loss.backward();
  assertScalar('loss', await loss.item(), -0.75 * crossEntropyRef(x, labels, batch, numLabels));
  assertClose('dlogits', await logits.grad!.toArray(), crossEntropyBackwardRef(x, labels, batch, numLabels, 0, -0.75), gradTol);
  logits.grad!.dispose();
}));

test('crossEntropy finite differences, with and without label smoothing', async () => {
  const batch = 4, numLabels = 5;
  const x = randn(batch * numLabels, 21, 2);
  const labels = [3, 0, 4, 1];
  await gradCheck('crossEntropy', [{ data: x, shape: [batch, numLabels] }], ([l]) => crossEntropy(l, labels));
  await gradCheck('crossEntropy smoothed', [{ data: x, shape: [batch, numLabels] }],
    ([l]) => crossEntropy(l, labels, { labelSmoothing: 0.3 }));
});

test('host labels are checked on the CPU with clear errors', () => {
  const before = Tensor.liveCount;
  const logits = Tensor.zeros([4, 2]);
  assert.throws(() => tidy(() => crossEntropy(logits, [0, 1, 1, 5])), messageHas('labels[3] = 5 is out of range for 2 labels'), 'out of range');
  assert.throws(() => tidy(() => crossEntropy(logits, [0, -1, 1, 1])), messageHas('labels[1] = -1 is out of range for 2 labels'), 'negative');
  assert.throws(() => tidy(() => crossEntropy(logits, [0, 1, 0.5, 1])), messageHas('labels[2] = 0.5 is not an integer'), 'not an integer');
  assert.throws(() => tidy(() => crossEntropy(logits, [NaN, 1, 0, 1])), messageHas('labels[0] = NaN is not an integer'), 'NaN');
  assert.throws(() => tidy(() => crossEntropy(logits, [0, 1, 1])), messageHas('3 labels for a batch of 4'), 'count');
  assert.throws(() => tidy(() => crossEntropy(logits, new Int32Array(5))), messageHas('5 labels for a batch of 4'), 'count int32');
  assert.throws(() => tidy(() => crossEntropy(logits, Tensor.fromArray(new Int32Array(3), [3]))), messageHas('has 3 labels for a batch of 4'), 'tensor count');
  assert.throws(() => tidy(() => crossEntropy(logits, Tensor.fromArray([0, 1, 1, 0], [4]))), messageHas('must be int32'), 'float tensor');
  assert.throws(() => tidy(() => crossEntropy(logits, [0, 1, 1, 0], { labelSmoothing: 1.5 })), messageHas('labelSmoothing must be in [0, 1]'), 'smoothing');
  assert.throws(() => tidy(() => crossEntropy(Tensor.zeros([8]), [0])), messageHas('logits must be float32 [batch, numLabels]'), 'logits rank');
  logits.dispose();
  if (Tensor.liveCount !== before) throw new Error(`${Tensor.liveCount - before} tensors leaked by failed calls`);
});

test('an int32 labels tensor is range-checked at the call, like host labels (from its host values: no GPU read-back)', () => tidy(() => {
  const logits = Tensor.fromArray(randn(6, 1), [3, 2], { requiresGrad: true });
  const source = Int32Array.from([0, 2, 1]);
  const labels = Tensor.fromArray(source, [3]);
  assert.throws(() => crossEntropy(logits, labels), /crossEntropy: labels tensor \[3\]: labels\[1\] = 2 is out of range for 2 labels/);
  assert.throws(() => crossEntropy(logits, labels.view([3, 1]).view([3])), /labels\[1\] = 2 is out of range/, 'a view of it');
  assert.throws(() => crossEntropy(logits, Tensor.fromArray([0, -1, 1], [3], { dtype: 'i32' })), /labels\[1\] = -1 is out of range/);
  source[1] = 1; // the tensor holds the values it was made with
  assert.throws(() => crossEntropy(logits, labels), /labels\[1\] = 2/);
  const unknown = Tensor.empty([3], { dtype: 'i32' }); // written by a kernel, not from the host
  assert.throws(() => crossEntropy(logits, unknown), /labels tensor \[3\].*not made from host values/);
}));

test('no-grad calls free their saved tensors', () => tidy(() => {
  const logits = Tensor.fromArray(randn(6, 1), [3, 2]);
  const before = Tensor.liveCount;
  const loss = crossEntropy(logits, [1, 0, 1]);
  if (Tensor.liveCount !== before + 1) throw new Error(`live tensors +${Tensor.liveCount - before} after a no-grad loss`);
  loss.dispose();
}));

for (const shape of [[1, 2], [2, 13, 37], [26, 1000], [5, 1]]) {
  test(`softmax over the last axis [${shape}]`, () => tidy(async () => {
    const cols = shape[shape.length - 1];
    const rows = shape.reduce((a, b) => a * b, 1) / cols;
    const x = randn(rows * cols, cols, 4).map((v, i) => v + (i % 3) * 50);
    const p = softmax(Tensor.fromArray(x, shape));
    if (p.shape.join() !== shape.join()) throw new Error(`shape [${p.shape}]`);
    assertClose('softmax', await p.toArray(), softmaxRef(x, rows, cols), { relL2: 1e-6, nmax: 1e-6 });
  }));
}

test.run();
