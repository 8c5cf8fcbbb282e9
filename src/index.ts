/// <reference types="@webgpu/types" preserve="true" />
// Public API of vitcatsvdogs, platform-neutral: nothing in this module's import graph imports a Node
// module, so it bundles for the browser as it is (Device.create() finds navigator.gpu there). In Node
// the package's Node entry (src/node.ts) re-exports all of this and registers Dawn's bindings.
export { Device, SETUP_HINT, type DeviceOptions, type DispatchDesc, type Binding, type KernelTiming, type Shader } from './gpu/device.ts';
export { registerPlatform, type Platform } from './gpu/platform.ts';
export { Tensor, tidy, keep, disposeOnThrow } from './tensor.ts';
export { noGrad, isGradEnabled } from './autograd.ts';
export {
  kernelVariants, setKernelVariants, MATMUL_VARIANTS, ATTENTION_VARIANTS, LONG_SEQUENCE, type KernelVariant, type AttentionVariant, type KernelVariants,
} from './ops/variants.ts';
export {
  autotune, autotuneMatmul, autotuneAttention, lastAutotune, lastAttentionAutotune, setDefaultAutotuneCache,
  type AutotuneCache, type AutotuneEntry, type AutotuneOptions, type AutotuneResult,
} from './ops/autotune.ts';
export { wgsl } from './gpu/wgsl.generated.ts';
export { shaderConstant } from './gpu/shaders.ts';
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
export {
  checkpointFiles, urlFiles, memoryFiles, readCheckpoint, checkpointBytes, registerCheckpointFolders, CONFIG_FILE, WEIGHTS_FILE,
  type CheckpointFiles, type CheckpointWriter, type CheckpointSource, type Checkpoint,
} from './vit/checkpoint.ts';
export { AdamW } from './optim/adamw.ts';
export { parseSafetensors, serializeSafetensors } from './io/safetensors.ts';
export * as ops from './ops/index.ts';
