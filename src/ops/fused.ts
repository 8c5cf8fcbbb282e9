// Linear layers with their neighbours fused into the matmul's epilogue (shaders/matmul.wgsl EPILOGUE,
// shaders/fused.wgsl for the backward): each saves a full pass over an activation. The results equal
// those of ops.linear followed by ops.gelu or ops.add, within float32 rounding.
import { Tensor, keep } from '../tensor.ts';
import { record, needsGrad } from '../autograd.ts';
import { wgsl } from './wgsl.generated.ts';
import { matmulRaw } from './matmul.ts';
import { sumRowsRaw } from './reduce.ts';
import { copy } from './elementwise.ts';

/** rows and out features of x W^T, with the shapes checked as ops.linear does */
function linearShape(op: string, x: Tensor, weight: Tensor, bias: Tensor | null): { rows: number; inF: number; outF: number } {
  const inF = x.shape[x.shape.length - 1];
  if (weight.shape.length !== 2 || x.shape.length < 1 || weight.shape[1] !== inF) {
    throw new Error(`${op}: input [${x.shape}] does not fit weight [${weight.shape}] (weight must be [out, ${inF}])`);
  }
  const outF = weight.shape[0];
  if (bias && (bias.shape.length !== 1 || bias.size !== outF)) {
    throw new Error(`${op}: bias [${bias.shape}] does not fit weight [${weight.shape}] (bias must be [${outF}])`);
  }
  return { rows: inF === 0 ? 0 : x.size / inF, inF, outF };
}

/** dx = dz W and dW = dz^T x of y = x W^T (+ b), for the inputs that need them. */
function linearInputGrads(x: Tensor, weight: Tensor, dz: Tensor, rows: number, inF: number, outF: number): [Tensor | null, Tensor | null] {
  let dx: Tensor | null = null, dW: Tensor | null = null;
  if (x.requiresGrad) {
    dx = Tensor.empty(x.shape, { device: x.device });
    matmulRaw(dz, weight, dx, { M: rows, N: inF, K: outF });
  }
  if (weight.requiresGrad) {
    dW = Tensor.empty(weight.shape, { device: weight.device });
    matmulRaw(dz, x, dW, { M: outF, N: inF, K: rows, transA: true });
  }
  return [dx, dW];
}

/**
 * gelu(linear(x, weight, bias)) with the exact-erf GELU in the matmul's epilogue: x [..., in], weight
 * [out, in], bias [out] -> [..., out] (the MLP-up layer of a transformer). Recorded: training keeps the
 * pre-activation z, written by the same epilogue; backward forms dz = dy * gelu'(z) and the bias
 * gradient in one pass (shaders/fused.wgsl), then dx = dz W and dW = dz^T x.
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
    const dz = Tensor.empty(shape, { device });
    const db = Tensor.empty([outF], { device });
    if (outF > 0) {
      device.dispatch({
        shader: wgsl.fused, entry: 'gelu_backward_bias', uniforms: { rows, cols: outF },
        bindings: [dy.binding, z!.binding, dz.binding, db.binding], workgroups: [Math.ceil(outF / 64)],
      });
    }
    const [dx, dW] = linearInputGrads(x, weight, dz, rows, inF, outF);
    dz.dispose();
    if (!bias?.requiresGrad) db.dispose();
    return [dx, dW, bias?.requiresGrad ? db : null];
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
    const [dx, dW] = linearInputGrads(x, weight, dy, rows, inF, outF);
    const db = bias?.requiresGrad ? sumRowsRaw(dy, outF) : null;
    const dr = !residual.requiresGrad ? null : residual.gradFn ? dy.view(dy.shape) : copy(dy);
    return [dx, dW, db, dr];
  });
}
