// Parity with PyTorch float64 goldens for HF ViTForImageClassification (../shared/golden),
// at the tolerances of its README. Every case folder found there is checked.
import { test } from 'uvu';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Tensor, tidy, ViTForImageClassification, AdamW, parseSafetensors } from '../src/index.ts';
import { assertClose, SHARED } from './helpers.ts';

const GOLDEN = join(SHARED, 'golden');
const cases = existsSync(GOLDEN)
  ? readdirSync(GOLDEN).filter((d) => existsSync(join(GOLDEN, d, 'io.safetensors'))).sort()
  : [];

const FORWARD = { relL2: 1e-5, nmax: 2e-5 };
const GRAD = { relL2: 5e-5, nmax: 1e-4 };
const ADAMW = { relL2: 1e-6, nmax: 1e-6 };

test('golden cases are present', () => {
  if (cases.length === 0) throw new Error(`no golden cases found under ${GOLDEN}`);
});

for (const name of cases) {
  test(`golden ${name}: forward, every gradient, AdamW step`, async () => {
    const dir = join(GOLDEN, name);
    const io = parseSafetensors(new Uint8Array(readFileSync(join(dir, 'io.safetensors'))), `${name}/io.safetensors`).tensors;
    const f32 = (key: string) => {
      const t = io.get(key);
      if (!t) throw new Error(`${name}: io.safetensors lacks ${key}`);
      return t.data as Float32Array;
    };
    const model = await ViTForImageClassification.fromPretrained(dir);
    const names = [...model.namedParameters()].map(([n]) => n);
    const gradNames = [...io.keys()].filter((k) => k.startsWith('grad.') && k !== 'grad.pixel_values').map((k) => k.slice(5));
    if (names.sort().join() !== gradNames.sort().join()) {
      throw new Error(`${name}: parameter names differ from the checkpoint's:\n${names.join(',')}\nvs\n${gradNames.join(',')}`);
    }
    const px = io.get('pixel_values')!;
    const labels = Array.from(io.get('labels')!.data as BigInt64Array, Number);
    await tidy(async () => {
      const x = Tensor.fromArray(px.data as Float32Array, px.shape, { requiresGrad: true });
      const out = model.forward(x, { labels, outputAttentions: true, outputHiddenStates: true });
      assertClose(`${name} logits`, await out.logits.toArray(), f32('logits'), FORWARD);
      assertClose(`${name} loss`, await out.loss!.toArray(), f32('loss'), FORWARD);
      assertClose(`${name} last_hidden_state`, await out.lastHiddenState.toArray(), f32('last_hidden_state'), FORWARD);
      const layers = model.config.num_hidden_layers;
      if (out.hiddenStates!.length !== layers + 1) throw new Error(`${out.hiddenStates!.length} hidden states, expected ${layers + 1}`);
      for (let j = 0; j <= layers; j++) {
        assertClose(`${name} hidden_states.${j}`, await out.hiddenStates![j].toArray(), f32(`hidden_states.${j}`), FORWARD);
      }
      // README: the goldens hold the attentions of the first and the last layer (at least)
      const attentionLayers = [...io.keys()].filter((k) => k.startsWith('attentions.')).map((k) => Number(k.slice(11)));
      for (const j of [0, layers - 1]) {
        if (!attentionLayers.includes(j)) throw new Error(`${name}: io.safetensors lacks attentions.${j} (has ${attentionLayers})`);
      }
      for (const j of attentionLayers) {
        assertClose(`${name} attentions.${j}`, await out.attentions![j].toArray(), f32(`attentions.${j}`), FORWARD);
      }
      out.loss!.backward();
      assertClose(`${name} grad.pixel_values`, await x.grad!.toArray(), f32('grad.pixel_values'), GRAD);
      x.grad!.dispose();
      const params = new Map(model.namedParameters());
      for (const [pname, p] of params) {
        const got = await p.grad!.toArray();
        if (pname.endsWith('attention.attention.key.bias')) {
          // analytically zero: compare against the same layer's query-bias gradient scale
          const qb = f32(`grad.${pname.replace('key.bias', 'query.bias')}`);
          const limit = 1e-5 * Math.max(...Array.from(qb, Math.abs));
          const worst = Math.max(...Array.from(got, Math.abs));
          if (!(worst <= limit)) throw new Error(`${name} grad.${pname}: max |grad| ${worst} > ${limit}`);
        } else {
          assertClose(`${name} grad.${pname}`, got, f32(`grad.${pname}`), GRAD);
        }
      }
    });
    model.zeroGrad();
    // AdamW from the stored weights and the stored gradients (README: feed those, not our own).
    const stepped = [...io.keys()].filter((k) => k.startsWith('adamw1.')).map((k) => k.slice(7));
    // README: the classifier weight and the first layer's query weight (at least)
    for (const p of ['classifier.weight', 'vit.encoder.layer.0.attention.attention.query.weight']) {
      if (!stepped.includes(p)) throw new Error(`${name}: io.safetensors lacks adamw1.${p} (has ${stepped})`);
    }
    const params = new Map(model.namedParameters());
    const ps = stepped.map((n) => params.get(n)!);
    ps.forEach((p, i) => (p.grad = Tensor.fromArray(f32(`grad.${stepped[i]}`), p.shape)));
    const opt = new AdamW(ps, { lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0.01 });
    opt.step();
    for (let i = 0; i < ps.length; i++) {
      assertClose(`${name} adamw1.${stepped[i]}`, await ps[i].toArray(), f32(`adamw1.${stepped[i]}`), ADAMW);
    }
    opt.zeroGrad();
    model.dispose();
  });
}

test.run();
