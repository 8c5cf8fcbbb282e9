// The built-in demo: what `train` runs without --params. It generates procedurally drawn cat and
// dog faces (JPEG files) into train_dir and trains a small ViT on them. Paths are relative to the
// working directory (the package root under `npm run catsvdogs`).
import type { ParamsObject } from './params.ts';

export const DEMO_PARAMS: ParamsObject = {
  name: 'built-in demo params',
  fields: {
    train_dir: '.cache/synthetic-catsvdogs',
    synthetic: { per_class: 1000, size: 64 },
    val_split: 0.2,
    out_dir: 'runs/demo',
    cache_dir: '.cache/catsvdogs',
    model: { preset: 'vit-nano-32', num_hidden_layers: 2 },
    epochs: 12,
    batch_size: 32,
    lr: 0.001,
    schedule: 'cosine',
    warmup_epochs: 1,
    weight_decay: 0.05,
    label_smoothing: 0.1,
    mean: [0.5, 0.5, 0.5],
    std: [0.5, 0.5, 0.5],
    augment: { random_resized_crop: true, crop_scale: [0.6, 1], flip: true, color_jitter: 0.1 },
    seed: 0,
  },
};
