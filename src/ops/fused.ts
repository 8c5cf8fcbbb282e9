// Linear layers with their neighbours fused into the matmul's epilogue (shaders/matmul.wgsl EPILOGUE):
// each saves a full pass over an activation. The results equal those of ops.linear followed by ops.gelu
// or ops.add, within float32 rounding.
import { Tensor, keep } from '../tensor.ts';
import { record, needsGrad } from '../autograd.ts';
import { matmulRaw, linearShape, linearBackwardRaw } from './matmul.ts';
import { copy, geluBackwardRaw } from './elementwise.ts';

/**
 * gelu(linear(x, weight, bias)) with the exact-erf GELU in the matmul's epilogue: x [..., in], weight
 * [out, in], bias [out] -> [..., out] (the MLP-up layer of a transformer). Recorded: training keeps the
 * pre-activation z, written by the same epilogue; backward forms dz = dy * gelu'(z), then dx = dz W,
 * dW = dz^T x and the bias gradient beside dW.
 */
export function linearGelu(x: Tensor, weight: Tensor, bias: Tensor | null = null): Tensor {
  const { rows, inF, outF } = linearShape('linearGelu', x, weight, bias);
  const device = x.device;
  const shape = [...x.shape.slice(0, -1), outF];
  const y = Tensor.empty(shape, { device });
  // the pre-activation for backward, owned by the op (inference skips writing it)
  const z = needsGrad(x, weight, bias) ? keep(Tensor.empty(shape, { device })) : null;
  matmulRaw(x, weight, y, { M: rows, N: outF, K: inF, transB: true, bias, gelu: true, preact: z });
  return record(y, 'linearGelu', [x, weight, bias], (dy) => {
    const dz = geluBackwardRaw(z!, dy);
    const grads = linearBackwardRaw(x, weight, bias, dz, rows, inF, outF);
    dz.dispose();
    return grads;
  }, z ? [z] : []);
}

/**
 * linear(x, weight, bias) + residual with the add in the matmul's epilogue: residual has the output's
 * shape [..., out] (a transformer's attention-output and MLP-down layers). Recorded: the residual's
 * gradient is dy itself (a view where the residual is computed, a copy for a leaf, whose gradient
 * later accumulates in place).
 */
export function linearResidual(x: Tensor, weight: Tensor, bias: Tensor | null, residual: Tensor): Tensor {
  const { rows, inF, outF } = linearShape('linearResidual', x, weight, bias);
  const shape = [...x.shape.slice(0, -1), outF];
  if (residual.shape.join() !== shape.join()) {
    throw new Error(`linearResidual: residual [${residual.shape}] must have the output's shape [${shape}]`);
  }
  const y = Tensor.empty(shape, { device: x.device });
  matmulRaw(x, weight, y, { M: rows, N: outF, K: inF, transB: true, bias, residual });
  return record(y, 'linearResidual', [x, weight, bias, residual], (dy) => {
    const [dx, dW, db] = linearBackwardRaw(x, weight, bias, dy, rows, inF, outF);
    const dr = !residual.requiresGrad ? null : residual.gradFn ? dy.view(dy.shape) : copy(dy);
    return [dx, dW, db, dr];
  });
}
