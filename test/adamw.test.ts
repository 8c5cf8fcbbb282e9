import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Tensor, keep, tidy } from '../src/tensor.ts';
import { AdamW } from '../src/optim/adamw.ts';
import { adamwRefInit, adamwRefStep, type AdamWRefOptions } from '../src/ref/adamw.ts';
import { assertClose, messageHas, randn } from './helpers.ts';

function setGrad(p: Tensor, g: Float32Array): void {
  p.grad?.dispose();
  p.grad = keep(Tensor.fromArray(g, p.shape));
}

function param(data: Float32Array, shape: number[]): Tensor {
  return keep(Tensor.fromArray(data, shape, { requiresGrad: true }));
}

function disposeAll(params: Tensor[], opt?: AdamW): void {
  for (const p of params) {
    p.grad?.dispose();
    p.dispose();
  }
  opt?.dispose();
}

test('one step: p1 = p0 * (1 - lr*wd) - lr * g / (|g| + eps), down to gradients of 1e-11', async () => {
  const n = 1003;
  const p0 = randn(n, 1);
  const sign = randn(n, 2);
  // magnitudes from 1e-11 to 1e1, both signs
  const g = Float32Array.from(sign, (s, i) => Math.sign(s || 1) * 10 ** (-11 + (12 * i) / (n - 1)));
  g.set([1e-8, -1e-9, 1e-10, -1e-11], 0);
  for (const [lr, weightDecay] of [[1e-3, 0.01], [3e-4, 0.05]]) {
    const eps = 1e-8;
    const p = param(p0, [n]);
    const opt = new AdamW([p], { lr, weightDecay });
    setGrad(p, g);
    opt.step();
    const got = await p.toArray();
    for (let i = 0; i < n; i++) {
      const want = p0[i] * (1 - lr * weightDecay) - (lr * g[i]) / (Math.abs(g[i]) + eps);
      if (!(Math.abs(got[i] - want) <= 1e-6 * Math.max(Math.abs(want), 1e-3))) {
        throw new Error(`lr ${lr}: p1[${i}] = ${got[i]}, expected ${want} (g = ${g[i]}, p0 = ${p0[i]})`);
      }
    }
    if (opt.stepCount !== 1) throw new Error(`stepCount ${opt.stepCount}`);
    disposeAll([p], opt);
  }
});

test('several steps against the reference, with an lr schedule and odd shapes', () => tidy(async () => {
  const shapes = [[37], [17, 5], [3, 197, 13], [1]];
  const opts: AdamWRefOptions = { lr: 1e-2, betas: [0.8, 0.99], eps: 1e-6, weightDecay: 0.1 };
  const params = shapes.map((s, k) => param(randn(s.reduce((a, b) => a * b, 1), 10 + k), s));
  const refs = params.map((p, k) => adamwRefInit(randn(p.size, 10 + k)));
  const opt = new AdamW(params, { lr: opts.lr, betas: opts.betas, eps: opts.eps, weightDecay: opts.weightDecay });
  for (let t = 0; t < 6; t++) {
    const lr = opts.lr * (1 - t / 6); // linear decay, set between steps
    opt.lr = lr;
    params.forEach((p, k) => {
      const g = randn(p.size, 100 * t + k, 10 ** (k - 2));
      setGrad(p, g);
      adamwRefStep(refs[k], g, { ...opts, lr });
    });
    opt.step();
  }
  const state = await opt.stateDict();
  for (let k = 0; k < params.length; k++) {
    assertClose(`p ${k}`, await params[k].toArray(), refs[k].p, { relL2: 1e-6, nmax: 2e-6 });
    assertClose(`m ${k}`, state.m[k], refs[k].m, { relL2: 1e-5, nmax: 1e-5 });
    assertClose(`v ${k}`, state.v[k], refs[k].v, { relL2: 1e-5, nmax: 1e-5 });
  }
  if (state.step !== 6 || state.paramSteps!.some((s) => s !== 6)) throw new Error(`steps ${state.step} [${state.paramSteps}]`);
  disposeAll(params, opt);
}));

test('parameters without a gradient are skipped, and their step count starts when they get one', async () => {
  const opts: AdamWRefOptions = { lr: 1e-2, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0.01 };
  const a0 = randn(19, 1), b0 = randn(23, 2);
  const a = param(a0, [19]), b = param(b0, [23]);
  const refA = adamwRefInit(a0), refB = adamwRefInit(b0);
  const opt = new AdamW([a, b], opts);
  for (let t = 0; t < 3; t++) {
    const ga = randn(19, 30 + t);
    setGrad(a, ga);
    adamwRefStep(refA, ga, opts);
    if (t === 2) {
      const gb = randn(23, 40);
      setGrad(b, gb);
      adamwRefStep(refB, gb, opts);
    }
    opt.step();
    if (t < 2) {
      const got = await b.toArray();
      if (got.some((v, i) => v !== b0[i])) throw new Error('a parameter without a gradient changed (weight decay applied?)');
    }
    opt.zeroGrad();
    if (a.grad !== null || b.grad !== null) throw new Error('zeroGrad left a gradient');
  }
  assertClose('a', await a.toArray(), refA.p, { relL2: 1e-6, nmax: 2e-6 });
  assertClose('b (one step, bias correction of step 1)', await b.toArray(), refB.p, { relL2: 1e-6, nmax: 2e-6 });
  const state = await opt.stateDict();
  if (state.paramSteps!.join() !== '3,1') throw new Error(`paramSteps [${state.paramSteps}]`);
  disposeAll([a, b], opt);
});

test('zeroGrad frees the gradients; moments made inside tidy survive it', async () => {
  const p = param(randn(50, 3), [5, 10]);
  const opt = new AdamW([p]);
  const before = Tensor.liveCount;
  await tidy(async () => {
    setGrad(p, randn(50, 4));
    opt.step();
  });
  if (Tensor.liveCount !== before + 3) throw new Error(`expected grad, m and v alive: +${Tensor.liveCount - before}`);
  opt.zeroGrad();
  if (Tensor.liveCount !== before + 2 || p.grad !== null) throw new Error('zeroGrad did not free the gradient');
  const state = await opt.stateDict();
  if (state.m[0].every((v) => v === 0)) throw new Error('first moment is still zero');
  opt.dispose();
  if (Tensor.liveCount !== before) throw new Error('dispose did not free the moments');
  p.dispose();
});

test('stateDict / loadStateDict: a resumed optimizer continues exactly', async () => {
  const shapes = [[33], [7, 3]];
  const init = shapes.map((s, k) => randn(s.reduce((a, b) => a * b, 1), 50 + k));
  const grads = (t: number) => shapes.map((s, k) => randn(s.reduce((a, b) => a * b, 1), 60 + 10 * t + k));
  const opts = { lr: 5e-3, betas: [0.85, 0.995] as [number, number], eps: 1e-7, weightDecay: 0.02 };
  // run 5 steps straight
  const straight = shapes.map((s, k) => param(init[k], s));
  const optA = new AdamW(straight, opts);
  for (let t = 0; t < 5; t++) {
    straight.forEach((p, k) => setGrad(p, grads(t)[k]));
    optA.step();
  }
  // run 3 steps, checkpoint, resume in a new optimizer over new tensors, run 2 more
  const first = shapes.map((s, k) => param(init[k], s));
  const optB = new AdamW(first, opts);
  for (let t = 0; t < 3; t++) {
    first.forEach((p, k) => setGrad(p, grads(t)[k]));
    optB.step();
  }
  optB.lr = 1e-3; // the checkpoint carries the lr it had
  const checkpoint = await optB.stateDict();
  const weights = await Promise.all(first.map((p) => p.toArray()));
  const resumed = shapes.map((s, k) => param(weights[k], s));
  const optC = new AdamW(resumed, { lr: 1 });
  optC.loadStateDict({ ...checkpoint, m: checkpoint.m.map((a) => a.slice()), v: checkpoint.v.map((a) => a.slice()) });
  if (optC.stepCount !== 3 || optC.lr !== 1e-3) throw new Error(`restored step ${optC.stepCount}, lr ${optC.lr}`);
  optC.lr = opts.lr;
  for (let t = 3; t < 5; t++) {
    resumed.forEach((p, k) => setGrad(p, grads(t)[k]));
    optC.step();
  }
  for (let k = 0; k < shapes.length; k++) {
    const a = await straight[k].toArray(), c = await resumed[k].toArray();
    if (a.some((v, i) => v !== c[i])) throw new Error(`parameter ${k} differs after resuming`);
  }
  disposeAll(straight, optA);
  disposeAll(first, optB);
  disposeAll(resumed, optC);
});

test('options are validated with messages naming the option', () => {
  const p = param(new Float32Array(4), [4]);
  assert.throws(() => new AdamW([p], { lr: -1 }), messageHas('lr must be'));
  assert.throws(() => new AdamW([p], { betas: [1, 0.9] }), messageHas('betas[0] must be in [0, 1)'));
  assert.throws(() => new AdamW([p], { betas: [0.9, -0.1] }), messageHas('betas[1] must be in [0, 1)'));
  assert.throws(() => new AdamW([p], { eps: -1e-8 }), messageHas('eps must be'));
  assert.throws(() => new AdamW([p], { weightDecay: NaN }), messageHas('weightDecay must be'));
  assert.throws(() => new AdamW([p, p]), messageHas('appears more than once'));
  const opt = new AdamW([p]);
  assert.throws(() => { opt.lr = -0.5; }, messageHas('lr must be'));
  assert.throws(() => opt.loadStateDict({ step: 0, lr: 1, betas: [0.9, 0.9], eps: 0, weightDecay: 0, m: [], v: [] }), messageHas('moments for 0 parameters'));
  assert.throws(() => opt.loadStateDict({
    step: 1, lr: 1, betas: [0.9, 0.9], eps: 0, weightDecay: 0, m: [new Float32Array(3)], v: [new Float32Array(3)],
  }), messageHas('has 4 elements, its moments 3 and 3'));
  p.dispose();
});

test.run();
