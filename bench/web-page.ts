// Training and inference throughput of a preset ViT, platform-neutral: bench/web.ts runs it in Node and,
// bundled, in Chromium's page (where it is `window.throughput`), so both sides time the same code.
import {
  AdamW, Device, Tensor, ViTConfig, ViTForImageClassification, kernelVariants, manualSeed, noGrad, setKernelVariants, tidy,
  type KernelVariant,
} from '../src/index.ts';
import { layerNormConfig } from '../src/ops/layernorm.ts';
import { modelPreset } from '../src/vit/presets.ts';

export interface ThroughputOptions {
  preset: string;
  /** overrides of the preset (the demo model is vit-nano-32 with 2 layers) */
  layers?: number;
  batch: number;
  /** timed training steps and inference batches, after one warm-up each */
  steps: number;
  /** the matmul variant to force; default: the device's */
  variant?: KernelVariant;
  /** LayerNorm threads per row to force; default: the device's */
  layerNormThreads?: number;
}

export interface Throughput {
  variant: string;
  layer_norm_threads: number | null;
  adapter: string;
  train_images_per_s: number;
  infer_images_per_s: number;
  /** per timed step, ms */
  train_ms: number[];
  infer_ms: number[];
}

export async function throughput(o: ThroughputOptions): Promise<Throughput> {
  const device = Device.hasDefault ? Device.default : await Device.create();
  const before = o.variant ? setKernelVariants(device, { matmul: o.variant }) : null;
  const threadsBefore = layerNormConfig.threadsPerRow;
  if (o.layerNormThreads) layerNormConfig.threadsPerRow = o.layerNormThreads;
  try {
    manualSeed(0);
    const config = new ViTConfig({ ...modelPreset(o.preset), ...(o.layers ? { num_hidden_layers: o.layers } : {}), num_labels: 2 } as never);
    const S = config.imageHW[0];
    const model = new ViTForImageClassification(config);
    const optimizer = new AdamW(model.parameters(), { lr: 1e-3, weightDecay: 0.05 });
    const x = Float32Array.from({ length: o.batch * 3 * S * S }, (_, i) => Math.sin(i * 0.37));
    const labels = Array.from({ length: o.batch }, (_, i) => i % 2);
    const trainStep = () => tidy(() => {
      const out = model.forward(Tensor.fromArray(x, [o.batch, 3, S, S]), { labels });
      out.loss!.backward();
      optimizer.step();
      optimizer.zeroGrad();
    });
    const inferStep = () => tidy(() => noGrad(() => model.forward(Tensor.fromArray(x, [o.batch, 3, S, S]))));
    const time = async (step: () => void) => {
      const ms: number[] = [];
      for (let i = 0; i <= o.steps; i++) {
        const t0 = performance.now();
        step();
        await device.sync();
        if (i > 0) ms.push(performance.now() - t0); // the first compiles the pipelines
      }
      return ms;
    };
    const train_ms = await time(trainStep);
    model.eval();
    const infer_ms = await time(inferStep);
    model.dispose();
    const rate = (ms: number[]) => (o.batch * ms.length * 1000) / ms.reduce((a, b) => a + b, 0);
    return {
      variant: kernelVariants(device).matmul, layer_norm_threads: layerNormConfig.threadsPerRow, adapter: device.description,
      train_images_per_s: rate(train_ms), infer_images_per_s: rate(infer_ms), train_ms, infer_ms,
    };
  } finally {
    if (before) setKernelVariants(device, before);
    layerNormConfig.threadsPerRow = threadsBefore;
  }
}

(globalThis as { throughput?: typeof throughput }).throughput = throughput;
