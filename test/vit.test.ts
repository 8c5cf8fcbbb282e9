// The ViT modules through the public API: HF names, bad input, head mask and pruning, gradient
// checkpointing, checkpoints (round trip, bare ViTModel, mismatches), flat memory over training.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, writeFileSync, existsSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  Device, Tensor, tidy, ViTConfig, ViTModel, ViTForImageClassification, AdamW, manualSeed, serializeSafetensors, parseSafetensors,
} from '../src/index.ts';
import { autogradConfig } from '../src/autograd.ts';
import { assertClose, randn, rejects } from './helpers.ts';

const small = { image_size: 16, patch_size: 4, hidden_size: 24, num_hidden_layers: 2, num_attention_heads: 3, intermediate_size: 40, num_labels: 3 };

test('HF parameter names and shapes', () => {
  manualSeed(1);
  const m = new ViTForImageClassification(new ViTConfig(small));
  const names = new Map([...m.namedParameters()].map(([n, p]) => [n, p.shape.join('x')]));
  const want: Record<string, string> = {
    'vit.embeddings.cls_token': '1x1x24',
    'vit.embeddings.position_embeddings': '1x17x24',
    'vit.embeddings.patch_embeddings.projection.weight': '24x3x4x4',
    'vit.encoder.layer.1.attention.attention.query.weight': '24x24',
    'vit.encoder.layer.0.attention.output.dense.bias': '24',
    'vit.encoder.layer.0.intermediate.dense.weight': '40x24',
    'vit.encoder.layer.0.output.dense.weight': '24x40',
    'vit.encoder.layer.1.layernorm_after.weight': '24',
    'vit.layernorm.bias': '24',
    'classifier.weight': '3x24',
  };
  for (const [n, s] of Object.entries(want)) if (names.get(n) !== s) throw new Error(`${n}: ${names.get(n)} != ${s}`);
  if (names.size !== 4 + 2 * 16 + 2 + 2) throw new Error(`${names.size} parameters`);
  m.dispose();
});

test('bad input: config, image size, channels, labels', () => {
  assert.throws(() => new ViTConfig({ hidden_size: 10, num_attention_heads: 3 }), /hidden size \(10\) is not a multiple of the number of attention heads \(3\)/);
  assert.throws(() => new ViTConfig({ image_size: 30, patch_size: 8 }), /30.*8|8.*30/);
  const m = new ViTForImageClassification(new ViTConfig(small));
  tidy(() => {
    assert.throws(() => m.forward(Tensor.zeros([1, 3, 20, 16])), /Input image size \(20\*16\) doesn't match model \(16\*16\)/);
    assert.throws(() => m.forward(Tensor.zeros([1, 1, 16, 16])), /channel dimension/);
    assert.throws(() => m.forward(Tensor.zeros([2, 3, 16, 16]), { labels: [0, 3] }), /labels\[1\] = 3 is out of range for 3 labels/);
    assert.throws(() => m.forward(Tensor.zeros([2, 3, 16, 16]), { labels: [0] }), /labels/);
    assert.throws(() => m.forward(Tensor.zeros([2, 3, 16, 16]), { labels: Tensor.fromArray(new Int32Array([0, 3]), [2]) }),
      /labels tensor \[2\]: labels\[1\] = 3 is out of range for 3 labels/);
  });
  m.dispose();
});

test('a forward that fails late (labels, head mask) outside tidy frees its intermediates', () => {
  manualSeed(1);
  const m = new ViTForImageClassification(new ViTConfig(small)).train();
  const x = Tensor.fromArray(randn(2 * 3 * 16 * 16, 1), [2, 3, 16, 16]);
  const device = Device.default;
  const live = Tensor.liveCount;
  const inUse = device.memoryStats().bytesInUse;
  assert.throws(() => m.forward(x, { labels: [0, 3] }), /labels\[1\] = 3 is out of range/);
  assert.throws(() => m.forward(x, { headMask: [[1, 1, 1]] }), /headMask has 1 rows/);
  assert.throws(() => m.vit.forward(x, { headMask: [[1, 1, 1]] }), /headMask has 1 rows/);
  assert.is(Tensor.liveCount, live, 'live tensors after the failed calls');
  assert.is(device.memoryStats().bytesInUse, inUse, 'pool bytes in use after the failed calls');
  x.dispose();
  m.dispose();
});

test('head mask zeroes a head; pruning that head gives the same output', () => tidy(async () => {
  manualSeed(2);
  const m = new ViTModel(new ViTConfig(small), { addPoolingLayer: false });
  const x = Tensor.fromArray(randn(2 * 3 * 16 * 16, 3), [2, 3, 16, 16]);
  const masked = await m.forward(x, { headMask: [[1, 0, 1], [1, 1, 1]], outputAttentions: true }).lastHiddenState.toArray();
  const plain = await m.forward(x).lastHiddenState.toArray();
  if (masked.every((v, i) => v === plain[i])) throw new Error('head mask had no effect');
  await m.pruneHeads({ 0: [1] });
  const sa = m.encoder.layer[0].attention.attention;
  if (sa.numHeads !== 2 || sa.query.weight.shape[0] !== 16) throw new Error(`pruned layer has ${sa.numHeads} heads`);
  const out = m.forward(x, { outputAttentions: true });
  if (out.attentions![0].shape[1] !== 2 || out.attentions![1].shape[1] !== 3) throw new Error('attention shapes after pruning');
  assertClose('pruned vs masked', await out.lastHiddenState.toArray(), masked, { relL2: 1e-5, nmax: 2e-5 });
  m.dispose();
}));

test('gradient checkpointing gives the same gradients', async () => {
  const grads = async (checkpointing: boolean) => {
    manualSeed(3);
    const m = new ViTForImageClassification(new ViTConfig({ ...small, hidden_dropout_prob: 0.1, attention_probs_dropout_prob: 0.1 }));
    m.train();
    m.vit.gradientCheckpointingEnable(checkpointing);
    manualSeed(4);
    await tidy(async () => {
      const x = Tensor.fromArray(randn(2 * 3 * 16 * 16, 5), [2, 3, 16, 16]);
      const out = m.forward(x, { labels: [0, 2] });
      out.loss!.backward();
      await out.loss!.item();
    });
    const g = new Map<string, Float32Array>();
    for (const [n, p] of m.namedParameters()) g.set(n, await p.grad!.toArray());
    m.dispose();
    return g;
  };
  const a = await grads(false);
  const b = await grads(true);
  for (const [n, v] of a) assertClose(`checkpointed grad ${n}`, b.get(n)!, v, { relL2: 1e-5, nmax: 1e-5 });
});

test('backward: each layer\'s two LayerNorms add the residual stream\'s gradient in their kernel, and two of q/k/v the first one\'s (4 dispatches fewer per layer), same gradients', async () => {
  const layers = 3;
  const run = async (accumulate: boolean, dropout: number) => {
    const prev = autogradConfig.accumulate;
    autogradConfig.accumulate = accumulate;
    try {
      manualSeed(3);
      const m = new ViTForImageClassification(new ViTConfig({ ...small, num_hidden_layers: layers, hidden_dropout_prob: dropout }));
      m.train();
      const device = Device.default;
      const dispatches = await tidy(async () => {
        const out = m.forward(Tensor.fromArray(randn(2 * 3 * 16 * 16, 5), [2, 3, 16, 16]), { labels: [0, 2] });
        const before = device.dispatchCount;
        out.loss!.backward();
        await out.loss!.item();
        return device.dispatchCount - before;
      });
      const grads = new Map<string, Float32Array>();
      for (const [n, p] of m.namedParameters()) grads.set(n, await p.grad!.toArray());
      m.dispose();
      return { dispatches, grads };
    } finally {
      autogradConfig.accumulate = prev;
    }
  };
  for (const dropout of [0, 0.1]) { // the residual add in the matmul's epilogue, or a separate add after dropout
    const unfused = await run(false, dropout);
    const fused = await run(true, dropout);
    assert.is(unfused.dispatches - fused.dispatches, 4 * layers, `dispatches saved by backward (dropout ${dropout})`);
    for (const [n, g] of unfused.grads) {
      if (n.endsWith('attention.attention.key.bias')) {
        // zero in exact arithmetic (softmax ignores a shift of all of a row's scores): rounding noise either way
        for (const v of [...g, ...fused.grads.get(n)!]) assert.ok(Math.abs(v) < 1e-7, `grad ${n} is noise, got ${v}`);
        continue;
      }
      assertClose(`grad ${n} (dropout ${dropout})`, fused.grads.get(n)!, g, { relL2: 1e-6, nmax: 1e-6 });
    }
  }
});

test('savePretrained / fromPretrained round trip, atomically written', async () => {
  manualSeed(5);
  const dir = mkdtempSync(join(tmpdir(), 'vit-ckpt-'));
  const m = new ViTForImageClassification(new ViTConfig(small));
  await m.savePretrained(dir);
  const files = readdirSync(dir).sort();
  if (files.join() !== 'config.json,model.safetensors') throw new Error(`files: ${files}`);
  const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  if (config.architectures[0] !== 'ViTForImageClassification' || config.hidden_size !== 24) throw new Error('config.json content');
  const m2 = await ViTForImageClassification.fromPretrained(dir);
  await tidy(async () => {
    const x = Tensor.fromArray(randn(3 * 16 * 16, 6), [1, 3, 16, 16]);
    assertClose('reloaded logits', await m2.forward(x).logits.toArray(), await m.eval().forward(x).logits.toArray(), { relL2: 0, nmax: 0 });
  });
  m.dispose(); m2.dispose();
});

test('config.json fields this library does not model are kept and written back by savePretrained, as transformers does', async () => {
  manualSeed(5);
  const dir = mkdtempSync(join(tmpdir(), 'vit-extra-'));
  try {
    const m = new ViTForImageClassification(new ViTConfig(small));
    await m.savePretrained(join(dir, 'a'));
    m.dispose();
    const unknown = { torch_dtype: 'float32', transformers_version: '4.44.2', custom: { nested: [1, 'two', null], flag: false } };
    const configA = JSON.parse(readFileSync(join(dir, 'a', 'config.json'), 'utf8'));
    writeFileSync(join(dir, 'a', 'config.json'), JSON.stringify({ ...configA, ...unknown }));
    const loaded = await ViTForImageClassification.fromPretrained(join(dir, 'a'));
    await loaded.savePretrained(join(dir, 'b'));
    loaded.dispose();
    const configB = JSON.parse(readFileSync(join(dir, 'b', 'config.json'), 'utf8'));
    for (const [k, v] of Object.entries(unknown)) assert.equal(configB[k], v, `${k} written back`);
    // also through config overrides (a new head)
    const relabelled = await ViTForImageClassification.fromPretrained(join(dir, 'b'), { config: { num_labels: 2 }, ignoreMismatchedSizes: true, warn: false });
    await relabelled.savePretrained(join(dir, 'c'));
    relabelled.dispose();
    const configC = JSON.parse(readFileSync(join(dir, 'c', 'config.json'), 'utf8'));
    for (const [k, v] of Object.entries(unknown)) assert.equal(configC[k], v, `${k} written back after overrides`);
    assert.is(configC.num_labels, 2);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a bare ViTModel checkpoint with pooler loads into the classifier with a fresh head', async () => {
  manualSeed(6);
  const dir = mkdtempSync(join(tmpdir(), 'vit-bare-'));
  const bare = new ViTModel(new ViTConfig(small));
  await bare.savePretrained(dir);
  const warnings: string[] = [];
  const warn = console.warn;
  console.warn = (msg: string) => warnings.push(msg);
  try {
    const m = await ViTForImageClassification.fromPretrained(dir);
    if (!warnings.some((w) => /classifier\.weight/.test(w))) throw new Error(`no warning about the new head: ${warnings}`);
    if (!warnings.some((w) => /pooler/.test(w))) throw new Error(`no warning about the unused pooler: ${warnings}`);
    const a = await m.vit.encoder.layer[1].output.dense.weight.toArray();
    const b = await bare.encoder.layer[1].output.dense.weight.toArray();
    assertClose('loaded weight', a, b, { relL2: 0, nmax: 0 });
    m.dispose();
  } finally {
    console.warn = warn;
  }
  bare.dispose();
});

test('checkpoint errors: missing/unexpected tensors, shape and dtype disagreements, truncation', async () => {
  manualSeed(7);
  const dir = mkdtempSync(join(tmpdir(), 'vit-bad-'));
  const m = new ViTForImageClassification(new ViTConfig(small));
  await m.savePretrained(dir);
  const weights = join(dir, 'model.safetensors');
  const good = readFileSync(weights);
  const tensors = parseSafetensors(new Uint8Array(good), 'model.safetensors').tensors;
  const rewrite = (edit: (t: Map<string, any>) => void) => {
    const copy = new Map([...tensors].map(([k, v]) => [k, { ...v }]));
    edit(copy);
    writeFileSync(weights, serializeSafetensors(copy));
  };
  rewrite((t) => t.delete('vit.layernorm.weight'));
  await rejects(ViTForImageClassification.fromPretrained(dir), /missing tensors: vit\.layernorm\.weight/);
  rewrite((t) => t.set('vit.extra.thing', { dtype: 'F32', shape: [2], data: new Float32Array(2) }));
  await rejects(ViTForImageClassification.fromPretrained(dir), /unexpected tensors: vit\.extra\.thing/);
  rewrite((t) => t.set('vit.layernorm.weight', { dtype: 'F32', shape: [25], data: new Float32Array(25) }));
  await rejects(ViTForImageClassification.fromPretrained(dir), /vit\.layernorm\.weight.*\[25\].*\[24\]/);
  rewrite((t) => t.set('vit.layernorm.weight', { dtype: 'I64', shape: [24], data: new BigInt64Array(24) }));
  await rejects(ViTForImageClassification.fromPretrained(dir), /vit\.layernorm\.weight.*dtype I64/);
  writeFileSync(weights, good.subarray(0, good.length - 100));
  await rejects(ViTForImageClassification.fromPretrained(dir), /model\.safetensors/);
  // a new head for another label count needs ignoreMismatchedSizes, as in transformers
  writeFileSync(weights, good);
  await rejects(ViTForImageClassification.fromPretrained(dir, { config: { num_labels: 2 } }), /classifier\.(weight|bias)/);
  const m2 = await ViTForImageClassification.fromPretrained(dir, { config: { num_labels: 2 }, ignoreMismatchedSizes: true, warn: false });
  if (m2.classifier.weight.shape[0] !== 2) throw new Error('new head shape');
  if (!existsSync(join(dir, 'config.json'))) throw new Error('config.json lost');
  m.dispose(); m2.dispose();
});

test('memory: 50 training steps leave the pool flat', async () => {
  manualSeed(8);
  const device = Device.default;
  const m = new ViTForImageClassification(new ViTConfig(small));
  m.train();
  const opt = new AdamW(m.parameters(), { lr: 1e-3 });
  const x = randn(4 * 3 * 16 * 16, 9);
  const inUse: number[] = [];
  for (let step = 0; step < 50; step++) {
    await tidy(async () => {
      const out = m.forward(Tensor.fromArray(x, [4, 3, 16, 16]), { labels: [0, 1, 2, 1] });
      out.loss!.backward();
      opt.step();
      opt.zeroGrad();
      await out.loss!.item();
    });
    inUse.push(device.memoryStats().bytesInUse);
  }
  if (inUse[49] !== inUse[2]) throw new Error(`bytes in use grew: step 2 ${inUse[2]}, step 50 ${inUse[49]}`);
  m.dispose();
  opt.dispose?.();
});

test.run();
