// Public API of vitcatsvdogs.
export { Device, type DeviceOptions, type KernelVariant } from './gpu/device.ts';
export { registerPlatform, type Platform } from './gpu/platform.ts';
export { Tensor, tidy, keep } from './tensor.ts';
export { noGrad, isGradEnabled } from './autograd.ts';
export { manualSeed } from './nn/random.ts';
export { Module, Linear, LayerNorm, Dropout } from './nn/module.ts';
export { ViTConfig } from './vit/config.ts';
export {
  ViTPatchEmbeddings, ViTEmbeddings, ViTSelfAttention, ViTSelfOutput, ViTAttention, ViTIntermediate, ViTOutput,
  ViTLayer, ViTEncoder, ViTPooler, ViTModel, ViTForImageClassification,
  type ViTForwardOptions, type ClassificationForwardOptions, type ImageClassifierOutput, type ViTModelOutput,
  type HeadMask, type FromPretrainedOptions,
} from './vit/modeling.ts';
export { loadStateDict, stateDict } from './vit/pretrained.ts';
export { AdamW } from './optim/adamw.ts';
export { parseSafetensors, serializeSafetensors } from './io/safetensors.ts';
export * as ops from './ops/index.ts';
