// Reductions (shaders/reduce.wgsl): sum of everything, sums over leading rows.
import { Tensor } from '../tensor.ts';
import { wgsl } from '../gpu/wgsl.generated.ts';
import { shaderConstant } from '../gpu/shaders.ts';
import { record } from '../autograd.ts';

/** threads per workgroup of sum_rows and broadcast_rows (the shader's default) */
const WG = shaderConstant(wgsl.reduce, 'WG');
/** Tests force the GPU adapters' two-pass column sums on a CPU adapter (restore in `finally`). */
export const reduceConfig: { chunkedColumnSums?: boolean } = {};

/** rows per partial sum of sum_rows_chunks (GPU adapters) */
const CHUNK = shaderConstant(wgsl.reduce, 'CHUNK');

/**
 * Column sums of x viewed as [rows, cols] (cols = product of the last `keepDims` dims):
 * result has shape x.shape.slice(-keepDims). With `into`, computes into = alpha*sum + beta*into.
 */
export function sumRowsRaw(x: Tensor, cols: number, alpha = 1, into?: Tensor, beta = 0): Tensor {
  const rows = x.size / cols;
  const device = x.device;
  const out = into ?? Tensor.empty([cols], { device });
  // a CPU adapter keeps one in-order loop per column (fastest there, and the float32 reference order)
  const chunks = (reduceConfig.chunkedColumnSums ?? !device.isCPU) ? Math.ceil(rows / CHUNK) : 1;
  if (chunks > 1 && chunks <= 65535) {
    const partial = Tensor.empty([chunks, cols], { device });
    device.dispatch({
      shader: wgsl.reduce, entry: 'sum_rows_chunks', uniforms: { rows, cols },
      bindings: [x.binding, partial.binding], workgroups: [Math.ceil(cols / WG), chunks],
    });
    sumRowsRaw(partial, cols, alpha, out, beta);
    partial.dispose();
    return out;
  }
  device.dispatch({
    shader: wgsl.reduce, entry: 'sum_rows', uniforms: { rows, cols, alpha, beta },
    bindings: [x.binding, out.binding], workgroups: [Math.ceil(cols / WG)],
  });
  return out;
}

/** Repeats a [cols] vector over `rows` rows (times alpha). */
export function broadcastRowsRaw(v: Tensor, rows: number, shape: readonly number[], alpha = 1): Tensor {
  const cols = v.size;
  const out = Tensor.empty(shape, { device: v.device });
  v.device.dispatch({
    shader: wgsl.reduce, entry: 'broadcast_rows', uniforms: { rows, cols, alpha },
    bindings: [v.binding, out.binding], workgroups: v.device.grid(rows * cols, WG),
  });
  return out;
}

/** Sum over all leading dims, keeping the last `keepDims` dims. */
export function sumRows(x: Tensor, keepDims = 1): Tensor {
  const keepShape = x.shape.slice(x.shape.length - keepDims);
  const cols = keepShape.reduce((a, b) => a * b, 1);
  const rows = x.size / cols;
  const out = sumRowsRaw(x, cols).view(keepShape);
  return record(out, 'sumRows', [x], (g) => [broadcastRowsRaw(g, rows, x.shape)]);
}

/** Sum of all elements, as a [1] tensor; `mean: true` divides by the count. */
export function sum(x: Tensor, opts: { mean?: boolean } = {}): Tensor {
  const alpha = opts.mean ? 1 / x.size : 1;
  const out = Tensor.empty([1], { device: x.device });
  x.device.dispatch({
    shader: wgsl.reduce, entry: 'sum_all', uniforms: { rows: 1, cols: x.size, alpha },
    bindings: [x.binding, out.binding], workgroups: [1],
  });
  return record(out, 'sum', [x], (g) => [broadcastRowsRaw(g, x.size, x.shape, alpha)]);
}

export function mean(x: Tensor): Tensor {
  return sum(x, { mean: true });
}
