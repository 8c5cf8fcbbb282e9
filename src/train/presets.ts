// Model presets: named ViT shapes for the trainer (params.json's model.preset) and the browser demo.
// Platform-neutral (no Node import), so the web page builds the same models.
import type { ViTConfigInit } from '../vit/config.ts';

/** HF ViTConfig fields, with the ones the trainer relies on always present. */
export interface ModelConfig extends ViTConfigInit {
  image_size: number;
  patch_size: number;
  num_channels: number;
  hidden_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  intermediate_size: number;
  hidden_act: string;
  hidden_dropout_prob: number;
  attention_probs_dropout_prob: number;
  initializer_range: number;
  layer_norm_eps: number;
  qkv_bias: boolean;
}

/** One table of presets: [image, patch, hidden, layers, heads, MLP], and what each is for. */
const PRESET_TABLE: Record<string, { about: string; shape: [number, number, number, number, number, number] }> = {
  'vit-nano-32': { about: 'tiny and quick: the built-in demo and tests', shape: [32, 4, 64, 4, 4, 128] },
  'vit-micro-32': { about: 'small ViT for 32px photos (the real-photo recipe)', shape: [32, 4, 128, 6, 4, 256] },
  'vit-ti-64': { about: 'ViT-Ti width and depth at 64px, patch 8', shape: [64, 8, 192, 12, 3, 768] },
  'vit-ti-224': { about: 'ViT-Ti/16', shape: [224, 16, 192, 12, 3, 768] },
  'vit-s-224': { about: 'ViT-S/16', shape: [224, 16, 384, 12, 6, 1536] },
  'vit-b-224': { about: 'ViT-B/16 (google/vit-base-patch16-224)', shape: [224, 16, 768, 12, 12, 3072] },
};

export const MODEL_PRESET_NAMES: readonly string[] = Object.keys(PRESET_TABLE);

/** The HF config fields of a preset (a fresh object), or throws naming the known presets. */
export function modelPreset(name: string): ModelConfig {
  const entry = PRESET_TABLE[name];
  if (!entry) throw new Error(`unknown model preset "${name}"; known presets: ${MODEL_PRESET_NAMES.join(', ')}`);
  const [image_size, patch_size, hidden_size, num_hidden_layers, num_attention_heads, intermediate_size] = entry.shape;
  return {
    image_size, patch_size, num_channels: 3,
    hidden_size, num_hidden_layers, num_attention_heads, intermediate_size,
    hidden_act: 'gelu', hidden_dropout_prob: 0, attention_probs_dropout_prob: 0,
    initializer_range: 0.02, layer_norm_eps: 1e-12, qkv_bias: true,
  };
}

/** A line per preset, for --help. */
export function describePresets(): string {
  return MODEL_PRESET_NAMES.map((name) => {
    const [img, patch, hidden, layers, heads, mlp] = PRESET_TABLE[name].shape;
    return `  ${name.padEnd(13)} image ${img}, patch ${patch}, hidden ${hidden}, ${layers} layers, ${heads} heads, MLP ${mlp}: ${PRESET_TABLE[name].about}`;
  }).join('\n');
}
