// Elementwise ops (shaders/elementwise.wgsl): add, mul, scale, accumulate, fill, GELU, tanh, dropout.
import { Tensor } from '../tensor.ts';
import { wgsl } from '../gpu/wgsl.generated.ts';
import { shaderConstant } from '../gpu/shaders.ts';
import { record } from '../autograd.ts';

const WG = shaderConstant(wgsl.elementwise, 'WG');

function sameShape(op: string, a: Tensor, b: Tensor): void {
  if (a.size !== b.size) throw new Error(`${op}: shapes [${a.shape}] and [${b.shape}] differ`);
}

function run(entry: string, n: number, bindings: Tensor[], alpha = 0, beta = 0, seed = 0): void {
  if (n === 0) return;
  const device = bindings[0].device;
  device.dispatch({
    shader: wgsl.elementwise, entry, uniforms: { n, seed, alpha, beta },
    bindings: bindings.map((t) => t.binding), workgroups: device.grid(n, WG),
  });
}

/** out = a + b (same number of elements; the shape of a). */
export function add(a: Tensor, b: Tensor): Tensor {
  sameShape('add', a, b);
  const out = Tensor.empty(a.shape, { device: a.device });
  run('add', a.size, [a, b, out]);
  return record(out, 'add', [a, b], (g) => [copy(g), copy(g)]);
}

/** out = a * b elementwise. */
export function mul(a: Tensor, b: Tensor): Tensor {
  sameShape('mul', a, b);
  const out = Tensor.empty(a.shape, { device: a.device });
  run('mul', a.size, [a, b, out]);
  return record(out, 'mul', [a, b], (g) => [
    b.requiresGrad || a.requiresGrad ? rawMul(g, b) : null,
    a.requiresGrad || b.requiresGrad ? rawMul(g, a) : null,
  ]);
}

function rawMul(a: Tensor, b: Tensor): Tensor {
  const out = Tensor.empty(a.shape, { device: a.device });
  run('mul', a.size, [a, b, out]);
  return out;
}

/** out = alpha * a + beta * b */
export function axpby(alpha: number, a: Tensor, beta: number, b: Tensor): Tensor {
  sameShape('axpby', a, b);
  const out = Tensor.empty(a.shape, { device: a.device });
  run('axpby', a.size, [a, b, out], alpha, beta);
  return record(out, 'axpby', [a, b], (g) => [scaleRaw(g, alpha), scaleRaw(g, beta)]);
}

function scaleRaw(x: Tensor, alpha: number): Tensor {
  const out = Tensor.empty(x.shape, { device: x.device });
  run('axpby', x.size, [x, x, out], alpha, 0);
  return out;
}

/** out = alpha * x */
export function scale(x: Tensor, alpha: number): Tensor {
  return record(scaleRaw(x, alpha), 'scale', [x], (g) => [scaleRaw(g, alpha)]);
}

/** A copy of x (not recorded). */
export function copy(x: Tensor): Tensor {
  const out = Tensor.empty(x.shape, { device: x.device, dtype: x.dtype });
  if (x.size) x.device.copy(x.buffer, 0, out.buffer, 0, x.byteLength);
  return out;
}

/** target += alpha * src, in place (gradient accumulation). */
export function accumulate(target: Tensor, src: Tensor, alpha = 1): void {
  sameShape('accumulate', target, src);
  run('accumulate', target.size, [target, src], alpha);
}

/** target[:] = value, in place. */
export function fill(target: Tensor, value: number): void {
  run('fill', target.size, [target], value);
}

export function full(shape: readonly number[], value: number): Tensor {
  const t = Tensor.empty(shape);
  fill(t, value);
  return t;
}

/** GELU with the exact erf, as torch's nn.functional.gelu (approximate='none'). */
export function gelu(x: Tensor): Tensor {
  const y = Tensor.empty(x.shape, { device: x.device });
  run('gelu_forward', x.size, [x, y]);
  return record(y, 'gelu', [x], (dy) => [geluBackwardRaw(x, dy)]);
}

/** dy * gelu'(x), the GELU's backward (not recorded; also linearGelu's). */
export function geluBackwardRaw(x: Tensor, dy: Tensor): Tensor {
  const dx = Tensor.empty(x.shape, { device: x.device });
  run('gelu_backward', x.size, [x, dy, dx]);
  return dx;
}

export function tanh(x: Tensor): Tensor {
  const y = Tensor.empty(x.shape, { device: x.device });
  run('tanh_forward', x.size, [x, y]);
  return record(y, 'tanh', [x], (dy) => {
    const dx = Tensor.empty(x.shape, { device: x.device });
    run('tanh_backward', x.size, [y, dy, dx]);
    return [dx];
  });
}

/** Inverted dropout with a seeded hash mask (backward regenerates the same mask). */
export function dropout(x: Tensor, p: number, seed: number): Tensor {
  if (p <= 0) return x;
  if (p >= 1) throw new Error(`dropout: probability must be < 1, got ${p}`);
  const y = Tensor.empty(x.shape, { device: x.device });
  const s = seed >>> 0;
  run('dropout_forward', x.size, [x, y], p, 0, s);
  return record(y, 'dropout', [x], (dy) => {
    const dx = Tensor.empty(x.shape, { device: x.device });
    run('dropout_forward', x.size, [dy, dx], p, 0, s);
    return [dx];
  });
}
