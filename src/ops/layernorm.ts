// LayerNorm over the last axis (shaders/layernorm.wgsl), torch semantics (biased variance).
import { Tensor, keep } from '../tensor.ts';
import { wgsl } from '../gpu/wgsl.generated.ts';
import { shaderConstant } from '../gpu/shaders.ts';
import { record } from '../autograd.ts';
import type { Device } from '../gpu/device.ts';

/**
 * Threads per row (a power of two). null picks by device: a CPU rasteriser runs fewer threads
 * per row faster (its barriers are expensive); tests set it to cover the variants. `subgroupRows`
 * false keeps the 16-thread kernels where the subgroup ones would run (tests compare the two).
 */
export const layerNormConfig: { threadsPerRow: number | null; subgroupRows: boolean } = { threadsPerRow: null, subgroupRows: true };

function threadsPerRow(device: Device): number {
  // SwiftShader: one 4-lane SIMD group per row (2-4x faster there than 16 threads, measured in the web demo)
  const n = layerNormConfig.threadsPerRow ?? (/swiftshader/i.test(device.description) ? 4 : device.isCPU ? 16 : 64);
  if (!(n >= 1 && n <= 256 && (n & (n - 1)) === 0)) throw new Error(`layerNorm: threadsPerRow must be a power of two <= 256, got ${n}`);
  return n;
}

/** the lanes layernorm_subgroup.wgsl needs, and the threads per row whose results it reproduces */
const SUBGROUP_LANES = shaderConstant(wgsl.layernorm_subgroup, 'LANES');
const SUBGROUP_THREADS = 2 * SUBGROUP_LANES;

/**
 * Whether layernorm_subgroup.wgsl's kernels (one subgroup per row, no barriers) give the bits of the
 * `wg`-thread kernels on this device: wg = 16 (lavapipe's default) and subgroups of 8 lanes or more.
 * layerNorm runs them there unless `layerNormConfig.subgroupRows` is false.
 */
export function subgroupRowsFit(device: Device, wg: number): boolean {
  return wg === SUBGROUP_THREADS && device.features.has('subgroups') && device.subgroupMinSize >= SUBGROUP_LANES;
}

/** Rows per partial sum of dweight/dbias (more partials = more parallel work on a GPU). */
const CHUNK_ROWS = 32;
/** columns per workgroup of the parameter-gradient sums */
const PARAM_WG = shaderConstant(wgsl.layernorm, 'PARAM_WG');

function checkFloat(name: string, t: Tensor): void {
  if (t.dtype !== 'f32') throw new Error(`layerNorm: ${name} must be float32, got ${t.dtype}`);
}

/**
 * y = (x - mean) / sqrt(var + eps) * weight + bias over the last axis of x [..., D] (biased
 * variance, like torch.nn.functional.layer_norm). weight and bias have D elements.
 */
export function layerNorm(x: Tensor, weight: Tensor, bias: Tensor, eps: number): Tensor {
  checkFloat('x', x);
  checkFloat('weight', weight);
  checkFloat('bias', bias);
  if (x.shape.length === 0) throw new Error('layerNorm: x must have at least one dimension');
  const d = x.shape[x.shape.length - 1];
  if (weight.size !== d || bias.size !== d) {
    throw new Error(`layerNorm: weight [${weight.shape}] and bias [${bias.shape}] must have ${d} elements for x [${x.shape}]`);
  }
  if (!(eps >= 0) || !Number.isFinite(eps)) throw new Error(`layerNorm: eps must be a finite number >= 0, got ${eps}`);
  const device = x.device;
  const wg = threadsPerRow(device);
  const bySubgroup = layerNormConfig.subgroupRows && subgroupRowsFit(device, wg);
  const rowKernel = (entry: string) => bySubgroup
    ? { shader: wgsl.layernorm_subgroup, entry: `${entry}_subgroup` }
    : { shader: wgsl.layernorm, entry };
  const rows = d === 0 ? 0 : x.size / d;
  const y = Tensor.empty(x.shape, { device });
  // per-row statistics for backward; owned by the op (record frees them when no grad is needed)
  const mean = keep(Tensor.empty([rows], { device }));
  const rstd = keep(Tensor.empty([rows], { device }));
  if (rows > 0) {
    const { shader, entry } = rowKernel('layernorm_forward');
    device.dispatch({
      shader, entry, constants: { WG: wg },
      uniforms: { rows, cols: d, eps },
      bindings: [x.binding, weight.binding, bias.binding, y.binding, mean.binding, rstd.binding],
      workgroups: device.grid(rows, 1),
    });
  }
  // x's gradient adds the one x already has (a transformer's residual stream also feeds an add): one
  // pass instead of dx then the tape's add
  return record(y, 'layerNorm', [x, weight, bias], (dy, pendingGrads) => {
    const pending = pendingGrads?.[0];
    const dx = x.requiresGrad ? Tensor.empty(x.shape, { device }) : null;
    if (dx && rows > 0) {
      const { shader, entry } = rowKernel('layernorm_backward_input');
      device.dispatch({
        shader, entry,
        constants: { WG: wg, ACCUMULATE: +!!pending }, uniforms: { rows, cols: d, eps },
        bindings: [x.binding, weight.binding, mean.binding, rstd.binding, dy.binding, dx.binding, (pending ?? dy).binding],
        workgroups: device.grid(rows, 1),
      });
    }
    let dweight: Tensor | null = null;
    let dbias: Tensor | null = null;
    if (weight.requiresGrad || bias.requiresGrad) {
      [dweight, dbias] = paramGrads(x, mean, rstd, dy, rows, d, weight.shape, bias.shape);
    }
    return [dx, dweight, dbias];
  }, [mean, rstd], [0]);
}

/** dweight and dbias as column sums over rows, in a fixed order (deterministic). */
function paramGrads(
  x: Tensor, mean: Tensor, rstd: Tensor, dy: Tensor, rows: number, d: number,
  weightShape: readonly number[], biasShape: readonly number[],
): [Tensor, Tensor] {
  const device = x.device;
  const dweight = Tensor.empty(weightShape, { device });
  const dbias = Tensor.empty(biasShape, { device });
  const chunks = Math.max(1, Math.ceil(rows / CHUNK_ROWS));
  if (chunks > 65535) throw new Error(`layerNorm backward: ${rows} rows is more than supported`);
  const partialDw = Tensor.empty([chunks, d], { device });
  const partialDb = Tensor.empty([chunks, d], { device });
  if (d > 0) {
    device.dispatch({
      shader: wgsl.layernorm, entry: 'layernorm_backward_params_partial', constants: { CHUNK_ROWS },
      uniforms: { rows, cols: d },
      bindings: [x.binding, mean.binding, rstd.binding, dy.binding, partialDw.binding, partialDb.binding],
      workgroups: [Math.ceil(d / PARAM_WG), chunks],
    });
    device.dispatch({
      shader: wgsl.layernorm, entry: 'layernorm_backward_params_finish',
      uniforms: { rows: chunks, cols: d },
      bindings: [partialDw.binding, partialDb.binding, dweight.binding, dbias.binding],
      workgroups: [Math.ceil(d / PARAM_WG)],
    });
  }
  partialDw.dispose();
  partialDb.dispose();
  return [dweight, dbias];
}
