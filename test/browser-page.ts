// Bundled by test/browser.test.ts and run in Chromium: the golden case's forward and backward in the
// page, every output and gradient returned for Node to compare with the golden files.
/// <reference lib="dom" />
import { ATTENTION_VARIANTS, Device, MATMUL_VARIANTS, Tensor, autotune, tidy } from '../src/index.ts';
import { attention, attentionKernel } from '../src/ops/attention.ts';
import { setKernelVariants, kernelVariants } from '../src/ops/variants.ts';
import { matmulRaw } from '../src/ops/matmul.ts';
import { ATTENTION_CASE, MATMUL_CASES, testValues } from './browser-cases.ts';
import { loadCheckpoint } from '../examples/web/demo.ts';
import { parseSafetensors } from '../src/io/safetensors.ts';

async function fetchBytes(url: string): Promise<Uint8Array> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
  return new Uint8Array(await res.arrayBuffer());
}

/** Runs golden case `base` (a URL folder): logits, loss, hidden states, attentions and every gradient. */
async function golden(base: string): Promise<Record<string, number[]>> {
  if (!Device.hasDefault) await Device.create();
  const { model } = await loadCheckpoint(new URL(base, location.href).href, base); // fromPretrained from a URL
  const io = parseSafetensors(await fetchBytes(`${base}/io.safetensors`), `${base}/io.safetensors`).tensors;
  const px = io.get('pixel_values')!;
  const labels = Array.from(io.get('labels')!.data as BigInt64Array, Number);
  const out: Record<string, number[]> = {};
  const put = async (name: string, t: Tensor) => { out[name] = Array.from(await t.toArray()); };
  await tidy(async () => {
    const x = Tensor.fromArray(px.data as Float32Array, px.shape, { requiresGrad: true });
    const o = model.forward(x, { labels, outputAttentions: true, outputHiddenStates: true });
    await put('logits', o.logits);
    await put('loss', o.loss!);
    await put('last_hidden_state', o.lastHiddenState);
    for (const [j, h] of o.hiddenStates!.entries()) await put(`hidden_states.${j}`, h);
    for (const [j, a] of o.attentions!.entries()) await put(`attentions.${j}`, a);
    o.loss!.backward();
    await put('grad.pixel_values', x.grad!);
    for (const [name, p] of model.namedParameters()) await put(`grad.${name}`, p.grad!);
  });
  model.dispose();
  return out;
}

/**
 * Every matmul variant at every transpose of MATMUL_CASES (with bias); every attention variant (forward
 * and the three gradients of ATTENTION_CASE, and the kernel that actually ran: a fused one the adapter
 * cannot run falls back); then the autotune's choices.
 */
async function variants(): Promise<{
  outputs: Record<string, number[]>; ran: Record<string, string>; autotune: { variant: string; ms: Record<string, number>; attention: string | null };
}> {
  const device = Device.hasDefault ? Device.default : await Device.create();
  const outputs: Record<string, number[]> = {};
  for (const variant of MATMUL_VARIANTS) {
    let seed = 1;
    for (const [M, K, N, batch] of MATMUL_CASES) {
      for (const transA of [false, true]) {
        for (const transB of [false, true]) {
          await tidy(async () => {
            const a = testValues(batch * M * K, seed++), b = testValues(batch * K * N, seed++), bias = testValues(N, seed++);
            const out = Tensor.empty([batch * M * N]);
            matmulRaw(Tensor.fromArray(a, [a.length]), Tensor.fromArray(b, [b.length]), out, {
              M, N, K, batch, transA, transB, variant, bias: Tensor.fromArray(bias, [N]),
            });
            outputs[`${variant} ${M}x${K}x${N}x${batch} ${transA} ${transB}`] = Array.from(await out.toArray());
          });
        }
      }
    }
  }
  const ran: Record<string, string> = {};
  const { batch, seq, heads, headDim } = ATTENTION_CASE;
  const before = kernelVariants(device);
  try {
    for (const variant of ATTENTION_VARIANTS) {
      setKernelVariants(device, { attention: variant });
      ran[variant] = attentionKernel(device, { seq, heads, headDim });
      await tidy(async () => {
        const n = batch * seq * heads * headDim;
        const [q, k, v] = [1, 2, 3].map((s) => Tensor.fromArray(testValues(n, s), [batch, seq, heads * headDim], { requiresGrad: true }));
        const { context } = attention(q, k, v, { heads });
        context.backward(Tensor.fromArray(testValues(n, 4), context.shape));
        for (const [name, t] of [['context', context], ['dq', q.grad!], ['dk', k.grad!], ['dv', v.grad!]] as const) {
          outputs[`attention ${variant} ${name}`] = Array.from(await t.toArray());
        }
      });
    }
  } finally {
    setKernelVariants(device, before);
  }
  const r = await autotune(device, { cache: null });
  return { outputs, ran, autotune: { variant: r!.matmulVariant, ms: r!.ms as Record<string, number>, attention: r!.attention?.attentionVariant ?? null } };
}

Object.assign(window, { golden, variants });
