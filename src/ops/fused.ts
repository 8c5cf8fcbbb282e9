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
  const { rows, inF, outF } = linearShape('linearGelu', x.shape, weight, bias);
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
 * gradient is dy itself.
 */
export function linearResidual(x: Tensor, weight: Tensor, bias: Tensor | null, residual: Tensor): Tensor {
  const { rows, inF, outF } = linearShape('linearResidual', x.shape, weight, bias);
  const shape = [...x.shape.slice(0, -1), outF];
  if (residual.shape.join() !== shape.join()) {
    throw new Error(`linearResidual: residual [${residual.shape}] must have the output's shape [${shape}]`);
  }
  const y = Tensor.empty(shape, { device: x.device });
  matmulRaw(x, weight, y, { M: rows, N: outF, K: inF, transB: true, bias, residual });
  return record(y, 'linearResidual', [x, weight, bias, residual], (dy) => {
    const [dx, dW, db] = linearBackwardRaw(x, weight, bias, dy, rows, inF, outF);
    return [dx, dW, db, residualGrad(residual, dy)];
  });
}

/** A residual's gradient, the output's: a view where the residual is computed, a copy for a leaf (whose gradient later accumulates in place). */
function residualGrad(residual: Tensor, dy: Tensor): Tensor | null {
  if (!residual.requiresGrad) return null;
  return residual.gradFn ? dy.view(dy.shape) : copy(dy);
}

/**
 * A transformer's MLP with its residual: linear(gelu(linear(x, w1, b1)), w2, b2) + residual, as
 * linearGelu then linearResidual, recorded as one op so that backward applies the GELU's derivative in
 * the epilogue of the product that forms the hidden gradient (dz = (dy W2) * gelu'(z)) instead of a
 * pass of its own over it. x [..., in], w1 [hidden, in], w2 [out, hidden], residual [..., out].
 */
export function mlpResidual(
  x: Tensor, w1: Tensor, b1: Tensor | null, w2: Tensor, b2: Tensor | null, residual: Tensor,
): Tensor {
  const { rows, inF, outF: hidden } = linearShape('mlpResidual (first layer)', x.shape, w1, b1);
  const { outF } = linearShape('mlpResidual (second layer)', [rows, hidden], w2, b2);
  const shape = [...x.shape.slice(0, -1), outF];
  if (residual.shape.join() !== shape.join()) {
    throw new Error(`mlpResidual: residual [${residual.shape}] must have the output's shape [${shape}]`);
  }
  const device = x.device;
  const training = needsGrad(x, w1, b1, w2, b2, residual);
  // the hidden activation and, for backward, its pre-activation: owned by the op
  const a = keep(Tensor.empty([rows, hidden], { device }));
  const z = training ? keep(Tensor.empty([rows, hidden], { device })) : null;
  matmulRaw(x, w1, a, { M: rows, N: hidden, K: inF, transB: true, bias: b1, gelu: true, preact: z });
  const y = Tensor.empty(shape, { device });
  matmulRaw(a, w2, y, { M: rows, N: outF, K: hidden, transB: true, bias: b2, residual });
  if (!training) a.dispose();
  return record(y, 'mlpResidual', [x, w1, b1, w2, b2, residual], (dy) => {
    // second layer: dW2 and db2 (a needs no gradient of its own)
    const [, dW2, db2] = linearBackwardRaw(a, w2, b2, dy, rows, hidden, outF);
    let grads1: (Tensor | null)[] = [null, null, null];
    if (x.requiresGrad || w1.requiresGrad || b1?.requiresGrad) {
      const dz = Tensor.empty([rows, hidden], { device });
      matmulRaw(dy, w2, dz, { M: rows, N: hidden, K: outF, geluGradAt: z });
      grads1 = linearBackwardRaw(x, w1, b1, dz, rows, inF, hidden);
      dz.dispose();
    }
    return [...grads1, dW2, db2, residualGrad(residual, dy)];
  }, training ? [a, z!] : []);
}
