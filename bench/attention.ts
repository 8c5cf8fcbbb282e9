// Attention forward + backward as a training step pays it, through the public `attention` op of any
// checkout (`--root DIR`, default this one), so that one harness times two versions of the library in one
// sitting (bench:compare --attention runs it on this checkout and the baseline). Wall clock of one call
// and its backward, submit and wait, median of --reps after two warm-ups; the variant is the one the
// checkout's autotune picks (or VITCATS_ATTENTION_VARIANT). Also prints a hash of the outputs and
// gradients: two versions with the same float order give the same one.
//
//   node --conditions=vitcatsvdogs-source --import tsx bench/attention.ts [--root DIR] [--reps N]
//     [--shapes BxSxHxHD,...] [--json]
import { createHash } from 'node:crypto';
import { resolve } from 'node:path';
import { flag, median, numFlag } from './common.ts';

const args = process.argv.slice(2);
const root = resolve(flag(args, 'root') ?? '.');
const reps = numFlag(args, 'reps', 7);
const json = flag(args, 'json') !== undefined;

// [batch, seq, heads, headDim]; default ViT-B/16 @384 and @224 (one image), ViT-Ti/16 @224 at batch 8
const shapes = (flag(args, 'shapes') ?? '1x577x12x64,1x197x12x64,8x197x3x64').split(',').map((s) => {
  const dims = s.split('x').map(Number);
  if (dims.length !== 4 || !dims.every((d) => Number.isInteger(d) && d > 0)) throw new Error(`--shapes: "${s}" is not BxSxHxHD`);
  return dims;
});

// older checkouts register Dawn in src/index.ts, newer ones in src/node.ts
await import(`${root}/src/node.ts`).catch(() => import(`${root}/src/index.ts`));
const { Device } = await import(`${root}/src/gpu/device.ts`);
const { Tensor } = await import(`${root}/src/tensor.ts`);
const { attention, attentionKernel } = await import(`${root}/src/ops/attention.ts`);
const tuning = await import(`${root}/src/ops/autotune.ts`).catch(() => null);

const device = await Device.create();
await tuning?.autotune(device);  // the variants a model would run with (cached per adapter and kernels)
let seed = 1;
const random = (shape: number[], requiresGrad: boolean) => {
  const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < data.length; i++) { seed = (seed * 1103515245 + 12345) >>> 0; data[i] = seed / 2 ** 32 - 0.5; }
  return Tensor.fromArray(data, shape, { device, requiresGrad });
};

const cases = [];
for (const [batch, seq, heads, hd] of shapes) {
  const shape = [batch, seq, heads * hd];
  const [q, k, v] = [0, 1, 2].map(() => random(shape, true));
  const dContext = random(shape, false);
  const step = async (hash: ReturnType<typeof createHash> | null) => {
    const t0 = performance.now();
    const { context } = attention(q, k, v, { heads });
    context.backward(dContext);
    await device.sync();
    const ms = performance.now() - t0;
    if (hash) for (const t of [context, q.grad, k.grad, v.grad]) hash.update(new Uint8Array((await t.toArray()).buffer));
    for (const t of [q, k, v]) { t.grad?.dispose(); t.grad = null; }
    context.dispose();
    return ms;
  };
  const hash = createHash('sha256');
  await step(hash);
  await step(null);
  const times: number[] = [];
  for (let r = 0; r < reps; r++) times.push(await step(null));
  // (checkouts from before the fused kernels have no attentionKernel: their only path is today's)
  const variant = attentionKernel?.(device, { batch, seq, heads, headDim: hd }) ?? 'unfused';
  cases.push({ shape: `B${batch} S${seq} H${heads} hd${hd}`, ms: median(times), times, variant, outputs_sha256: hash.digest('hex').slice(0, 16) });
  for (const t of [q, k, v, dContext]) t.dispose();
}
device.destroy();
for (const c of cases) console.log(`${c.shape}: ${c.ms.toFixed(1)} ms (${c.variant}), outputs ${c.outputs_sha256}`);
if (json) console.log(JSON.stringify({ root, cases }));
