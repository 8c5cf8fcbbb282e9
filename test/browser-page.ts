// Bundled by test/browser.test.ts and run in Chromium: the golden case's forward and backward in the
// page, every output and gradient returned for Node to compare with the golden files.
/// <reference lib="dom" />
import { Device, Tensor, tidy } from '../src/index.ts';
import { loadCheckpointFiles } from '../examples/web/demo.ts';
import { parseSafetensors } from '../src/io/safetensors.ts';

async function fetchBytes(url: string): Promise<Uint8Array> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
  return new Uint8Array(await res.arrayBuffer());
}

/** Runs golden case `base` (a URL folder): logits, loss, hidden states, attentions and every gradient. */
async function golden(base: string): Promise<Record<string, number[]>> {
  if (!Device.hasDefault) await Device.create();
  const files = new Map([['config.json', await fetchBytes(`${base}/config.json`)], ['model.safetensors', await fetchBytes(`${base}/model.safetensors`)]]);
  const { model } = loadCheckpointFiles(files, base);
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

(window as unknown as { golden: typeof golden }).golden = golden;
