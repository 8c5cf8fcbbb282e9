// All recorded ops, for users composing their own models.
export { add, mul, axpby, scale, gelu, tanh, dropout, fill, full, accumulate, copy } from './elementwise.ts';
export { sum, mean, sumRows } from './reduce.ts';
export { reshape } from './shape.ts';
export { matmul, linear } from './matmul.ts';
export { linearGelu, linearResidual, mlpResidual } from './fused.ts';
export { attention } from './attention.ts';
export { layerNorm } from './layernorm.ts';
export { patchify, embeddings, selectToken } from './patchify.ts';
export { crossEntropy, softmax } from './loss.ts';
