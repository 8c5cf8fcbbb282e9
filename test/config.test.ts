import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ViTConfig, ViTConfigError, type ViTConfigInit } from '../src/vit/config.ts';
import { SHARED } from './helpers.ts';

const GOLDEN = join(SHARED, 'golden');

function throwsWith(fn: () => unknown, ...parts: string[]): void {
  let message: string | null = null;
  try { fn(); } catch (e) { message = (e as Error).message; }
  if (message === null) assert.unreachable(`expected an error containing ${parts.join(', ')}`);
  for (const p of parts) assert.ok(message!.includes(p), `error "${message}" should contain ${p}`);
}

test('defaults are those of transformers ViTConfig / PretrainedConfig', () => {
  const c = new ViTConfig();
  assert.equal(
    {
      hidden_size: c.hidden_size, num_hidden_layers: c.num_hidden_layers, num_attention_heads: c.num_attention_heads,
      intermediate_size: c.intermediate_size, hidden_act: c.hidden_act, hidden_dropout_prob: c.hidden_dropout_prob,
      attention_probs_dropout_prob: c.attention_probs_dropout_prob, initializer_range: c.initializer_range,
      layer_norm_eps: c.layer_norm_eps, image_size: c.image_size, patch_size: c.patch_size, num_channels: c.num_channels,
      qkv_bias: c.qkv_bias, encoder_stride: c.encoder_stride, pooler_output_size: c.pooler_output_size,
      pooler_act: c.pooler_act, model_type: c.model_type, problem_type: c.problem_type, architectures: c.architectures,
    },
    {
      hidden_size: 768, num_hidden_layers: 12, num_attention_heads: 12, intermediate_size: 3072, hidden_act: 'gelu',
      hidden_dropout_prob: 0, attention_probs_dropout_prob: 0, initializer_range: 0.02, layer_norm_eps: 1e-12,
      image_size: 224, patch_size: 16, num_channels: 3, qkv_bias: true, encoder_stride: 16, pooler_output_size: 768,
      pooler_act: 'tanh', model_type: 'vit', problem_type: null, architectures: null,
    },
  );
  assert.equal(c.id2label, { 0: 'LABEL_0', 1: 'LABEL_1' });
  assert.equal(c.label2id, { LABEL_0: 0, LABEL_1: 1 });
  assert.is(c.numLabels, 2);
  assert.is(c.numPatches, 196);
  assert.is(c.seqLength, 197);
  assert.is(c.headDim, 64);
  assert.equal(c.labels, ['LABEL_0', 'LABEL_1']);
  assert.equal(c.extra, {});
});

test('partial input, num_labels, pooler_output_size, problem_type and architectures', () => {
  const c = new ViTConfig({ hidden_size: 96, num_attention_heads: 3, num_labels: 5, problem_type: 'single_label_classification' });
  assert.is(c.hidden_size, 96);
  assert.is(c.headDim, 32);
  assert.is(c.pooler_output_size, 96);
  assert.is(c.numLabels, 5);
  assert.is(c.id2label[4], 'LABEL_4');
  assert.is(c.label2id.LABEL_3, 3);
  assert.is(c.problem_type, 'single_label_classification');
  assert.is(new ViTConfig({ pooler_output_size: 10 }).pooler_output_size, 10);
  assert.is(new ViTConfig({ pooler_output_size: null }).pooler_output_size, 768);
  const named = new ViTConfig({ id2label: { 0: 'cat', 1: 'dog' }, architectures: ['ViTForImageClassification'] });
  assert.equal(named.label2id, { cat: 0, dog: 1 });
  assert.equal(named.labels, ['cat', 'dog']);
  assert.equal(named.toJSON().architectures, ['ViTForImageClassification']);
  assert.is(new ViTConfig({ num_labels: 2, id2label: { 0: 'cat', 1: 'dog' } }).numLabels, 2);
});

test('image_size / patch_size as [h, w] pairs', () => {
  const c = new ViTConfig({ image_size: [32, 48], patch_size: [8, 16], hidden_size: 64, num_attention_heads: 4 });
  assert.equal(c.imageHW, [32, 48]);
  assert.equal(c.patchHW, [8, 16]);
  assert.is(c.numPatches, 4 * 3);
  assert.is(c.seqLength, 13);
  const json = c.toJSON();
  assert.equal(json.image_size, [32, 48]);
  assert.equal(json.patch_size, [8, 16]);
  assert.equal(ViTConfig.fromJSON(JSON.parse(JSON.stringify(json))).toJSON(), json);
  assert.is(new ViTConfig({ image_size: [40, 24], patch_size: 8 }).numPatches, 5 * 3);
  throwsWith(() => new ViTConfig({ image_size: [32, 40], patch_size: [8, 16] }), 'image size ([32, 40])', 'patch size ([8, 16])');
});

for (const name of ['vit-micro', 'vit-tiny-odd', 'vit-ti16-224', 'vit-micro-sharp']) {
  test(`golden ${name}/config.json: fromJSON / toJSON round trip`, () => {
    const path = join(GOLDEN, name, 'config.json');
    const golden = JSON.parse(readFileSync(path, 'utf8'));
    const c = ViTConfig.fromJSON(golden, path);
    const json = c.toJSON();
    for (const [k, v] of Object.entries(golden)) assert.equal(json[k], v, k); // every golden field, same value
    // the only additions are the fields newer transformers write
    assert.equal(Object.keys(json).filter((k) => !(k in golden)).sort(), ['pooler_act', 'pooler_output_size']);
    assert.equal(c.extra, { torch_dtype: 'float32' });
    assert.equal(ViTConfig.fromJSON(JSON.parse(JSON.stringify(json)), 'again').toJSON(), json);
    const [s, hd] = { 'vit-micro': [17, 16], 'vit-tiny-odd': [26, 32], 'vit-ti16-224': [197, 64], 'vit-micro-sharp': [17, 16] }[name]!;
    assert.is(c.seqLength, s);
    assert.is(c.headDim, hd);
    assert.is(c.numLabels, golden.num_labels);
  });
}

test('unknown fields are kept and written back (copies, not shared)', () => {
  const nested = { a: [1, 2] };
  const c = ViTConfig.fromJSON({ transformers_version: '4.40.0', custom: nested, torch_dtype: 'float32' });
  const json = c.toJSON();
  assert.is(json.transformers_version, '4.40.0');
  assert.equal(json.custom, { a: [1, 2] });
  (json.custom as { a: number[] }).a.push(3);
  assert.equal(c.toJSON().custom, { a: [1, 2] });
});

test('validation: HF messages for heads and patches', () => {
  throwsWith(() => new ViTConfig({ hidden_size: 65, num_attention_heads: 4 }),
    'The hidden size (65) is not a multiple of the number of attention heads (4)');
  throwsWith(() => ViTConfig.fromJSON({ image_size: 30, patch_size: 8 }, 'x/config.json'),
    'x/config.json', 'The image size (30) is not a multiple of the patch size (8)');
});

test('validation: types and ranges name the field, the source and what was expected', () => {
  const src = 'ckpt/config.json';
  const cases: [ViTConfigInit | unknown, string[]][] = [
    [{ hidden_size: 0 }, ['hidden_size must be a positive integer', 'got 0 (number)']],
    [{ hidden_size: -64 }, ['hidden_size must be a positive integer']],
    [{ hidden_size: 64.5 }, ['hidden_size must be a positive integer']],
    [{ hidden_size: '64' }, ['hidden_size must be a positive integer', 'got "64" (string)']],
    [{ num_hidden_layers: null }, ['num_hidden_layers must be a positive integer', 'got null']],
    [{ num_attention_heads: 0 }, ['num_attention_heads must be a positive integer']],
    [{ intermediate_size: 1.5 }, ['intermediate_size must be a positive integer']],
    [{ num_channels: 0 }, ['num_channels must be a positive integer']],
    [{ encoder_stride: 'x' }, ['encoder_stride must be a positive integer']],
    [{ pooler_output_size: -1 }, ['pooler_output_size must be a positive integer']],
    [{ image_size: '224' }, ['image_size must be a positive integer or an [height, width] pair']],
    [{ image_size: [224] }, ['image_size must be']],
    [{ patch_size: [16, 0] }, ['patch_size must be']],
    [{ hidden_act: 'gelu_new' }, ['hidden_act "gelu_new" is not supported', 'only the exact-erf "gelu"']],
    [{ hidden_act: 'relu' }, ['hidden_act "relu" is not supported']],
    [{ hidden_act: 3 }, ['hidden_act must be a string']],
    [{ hidden_dropout_prob: 1 }, ['hidden_dropout_prob must be a probability in [0, 1)', 'got 1 (number)']],
    [{ hidden_dropout_prob: -0.1 }, ['hidden_dropout_prob must be a probability in [0, 1)']],
    [{ attention_probs_dropout_prob: 1.5 }, ['attention_probs_dropout_prob must be a probability in [0, 1)']],
    [{ attention_probs_dropout_prob: NaN }, ['attention_probs_dropout_prob must be a probability']],
    [{ layer_norm_eps: 0 }, ['layer_norm_eps must be a finite number > 0']],
    [{ layer_norm_eps: '1e-12' }, ['layer_norm_eps must be a finite number > 0']],
    [{ initializer_range: -1 }, ['initializer_range must be a finite number >= 0']],
    [{ qkv_bias: 'true' }, ['qkv_bias must be true or false']],
    [{ pooler_act: 1 }, ['pooler_act must be a string']],
    [{ num_labels: 0 }, ['num_labels must be a positive integer']],
    [{ num_labels: 3, id2label: { 0: 'cat', 1: 'dog' } }, ['num_labels=3 is incompatible with the id2label map of length 2']],
    [{ id2label: ['cat', 'dog'] }, ['id2label must be an object']],
    [{ id2label: { 1: 'cat' } }, ['id2label must be an object whose keys are the label indices 0..0', 'bad key "1"']],
    [{ id2label: { 0: 'cat', x: 'dog' } }, ['bad key "x"']],
    [{ id2label: { '00': 'cat' } }, ['bad key "00"']],
    [{ id2label: { 0: 7 } }, ['id2label must be an object of label names']],
    [{ id2label: {} }, ['id2label must be a non-empty object']],
    [{ label2id: { cat: '0' } }, ['label2id must be an object of non-negative integer indices', '"cat"']],
    [{ label2id: 'cat' }, ['label2id must be an object']],
    [{ problem_type: 'classification' }, ['`problem_type` was not understood', 'classification']],
    [{ model_type: 'deit' }, ['model_type must be "vit"', '"deit"']],
    [{ architectures: 'ViTForImageClassification' }, ['architectures must be an array of strings']],
  ];
  for (const [input, parts] of cases) throwsWith(() => ViTConfig.fromJSON(input, src), src, ...parts);
  for (const bad of [null, [], 'config', 3]) throwsWith(() => ViTConfig.fromJSON(bad, src), src, 'must be a JSON object');
  throwsWith(() => new ViTConfig({ hidden_size: 0 }), 'ViTConfig: hidden_size');
});

/** The ViTConfigError that building `init` throws; fails when it builds. */
function configError(init: Record<string, unknown>, source?: string): ViTConfigError {
  try {
    ViTConfig.fromJSON(init, source);
  } catch (e) {
    if (e instanceof ViTConfigError) return e;
    throw e;
  }
  throw new Error(`expected a ViTConfigError for ${JSON.stringify(init)}`);
}

test('validation: every problem at once, each with its fields, what was expected and the value', () => {
  const e = configError({ hidden_size: 0, hidden_act: 'relu', layer_norm_eps: '1e-12', num_labels: 3, id2label: { 0: 'cat' } }, 'c.json');
  assert.equal(e.problems.map((p) => p.fields), [['hidden_size'], ['hidden_act'], ['layer_norm_eps'], ['num_labels', 'id2label']]);
  assert.equal(e.problems[0], { fields: ['hidden_size'], message: 'hidden_size must be a positive integer, got 0 (number)', expected: 'a positive integer', value: 0 });
  assert.is(e.problems[2].value, '1e-12');
  for (const p of e.problems) assert.ok(e.message.includes(p.message), `${e.message} names ${p.message}`);
  assert.match(e.message, /^c\.json: 4 problems/);
  // the checks across fields run once every field is right, and both are reported
  const across = configError({ hidden_size: 65, num_attention_heads: 4, image_size: 30, patch_size: 8 });
  assert.equal(across.problems.map((p) => p.fields), [['hidden_size', 'num_attention_heads'], ['image_size', 'patch_size']]);
  assert.is(across.problems[0].expected, undefined);
  // one problem: the message is that problem's, as before
  assert.is(configError({ qkv_bias: 1 }, 'x').message, 'x: qkv_bias must be true or false, got 1 (number)');
});

test.run();
