// Patch embedding and token ops (shaders/patchify.wgsl): patchify (im2col for a stride = kernel
// conv), embeddings ([CLS] + position embeddings) and selectToken. All are memory-bound copies.
import { Tensor } from '../tensor.ts';
import { wgsl } from '../gpu/wgsl.generated.ts';
import { shaderConstant } from '../gpu/shaders.ts';
import { record } from '../autograd.ts';

const WG = shaderConstant(wgsl.patchify, 'WG');

function dispatch(entry: string, n: number, uniforms: Record<string, number>, bindings: Tensor[]): void {
  if (n === 0) return;
  const device = bindings[0].device;
  device.dispatch({
    shader: wgsl.patchify, entry, uniforms, bindings: bindings.map((t) => t.binding), workgroups: device.grid(n, WG),
  });
}

function expectShape(op: string, name: string, t: Tensor, rank: number, what: string): void {
  if (t.shape.length !== rank) throw new Error(`${op}: ${name} must be ${what}, got shape [${t.shape}]`);
  if (t.dtype !== 'f32') throw new Error(`${op}: ${name} must be float32, got ${t.dtype}`);
}

function patchSize(patch: number | readonly [number, number]): [number, number] {
  const [ph, pw] = typeof patch === 'number' ? [patch, patch] : patch;
  if (!Number.isInteger(ph) || !Number.isInteger(pw) || ph < 1 || pw < 1) {
    throw new Error(`patchify: patch size must be positive integers, got ${typeof patch === 'number' ? patch : `[${patch}]`}`);
  }
  return [ph, pw];
}

/**
 * Cuts images [B, C, H, W] into non-overlapping patches: [B, T, C*Ph*Pw] with T = (H/Ph)*(W/Pw),
 * patches in row-major order and features ordered (c, kh, kw). A Conv2d with kernel = stride = P
 * and weight [D, C, P, P] equals a linear layer on this with the weight viewed as [D, C*P*P].
 */
export function patchify(x: Tensor, patch: number | readonly [number, number]): Tensor {
  expectShape('patchify', 'x', x, 4, '[B, C, H, W]');
  const [ph, pw] = patchSize(patch);
  const [batch, channels, height, width] = x.shape;
  if (height % ph !== 0 || width % pw !== 0) {
    throw new Error(
      `patchify: image size ${height}x${width} (HxW) is not divisible by patch size ${ph}x${pw}`,
    );
  }
  const gridW = width / pw;
  const tokens = (height / ph) * gridW;
  const u = { n: x.size, channels, height, width, ph, pw, grid_w: gridW, tokens };
  const out = Tensor.empty([batch, tokens, channels * ph * pw], { device: x.device });
  dispatch('patchify_forward', x.size, u, [x, out]);
  return record(out, 'patchify', [x], (dout) => {
    const dx = Tensor.empty(x.shape, { device: x.device });
    dispatch('patchify_backward', x.size, u, [dout, dx]);
    return [dx];
  });
}

/**
 * h [B, T+1, D]: h[b, 0] = cls + pos[0]; h[b, t+1] = patches[b, t] + pos[t+1].
 * patches [B, T, D], cls [1, 1, D], pos [1, T+1, D].
 */
export function embeddings(patches: Tensor, cls: Tensor, pos: Tensor): Tensor {
  expectShape('embeddings', 'patches', patches, 3, '[B, T, D]');
  expectShape('embeddings', 'cls', cls, 3, '[1, 1, D]');
  expectShape('embeddings', 'pos', pos, 3, '[1, T+1, D]');
  const [batch, tokens, dim] = patches.shape;
  if (cls.shape[0] !== 1 || cls.shape[1] !== 1 || cls.shape[2] !== dim) {
    throw new Error(`embeddings: cls must be [1, 1, ${dim}] for patches [${patches.shape}], got [${cls.shape}]`);
  }
  if (pos.shape[0] !== 1 || pos.shape[1] !== tokens + 1 || pos.shape[2] !== dim) {
    throw new Error(
      `embeddings: pos must be [1, ${tokens + 1}, ${dim}] (T+1 = ${tokens + 1} tokens) for patches [${patches.shape}], got [${pos.shape}]`,
    );
  }
  const seqLen = tokens + 1;
  const out = Tensor.empty([batch, seqLen, dim], { device: patches.device });
  dispatch('embeddings_forward', out.size, { n: out.size, dim, tokens, batch }, [patches, cls, pos, out]);
  return record(out, 'embeddings', [patches, cls, pos], (dh) => {
    const dpatches = patches.requiresGrad ? tokenSliceRaw(dh, 1, tokens, patches.shape) : null;
    let dcls: Tensor | null = null;
    let dpos: Tensor | null = null;
    if (cls.requiresGrad || pos.requiresGrad) {
      dpos = Tensor.empty(pos.shape, { device: pos.device });
      dcls = Tensor.empty(cls.shape, { device: cls.device });
      dispatch('embeddings_backward_sum', dpos.size, { n: dpos.size, dim, tokens, batch }, [dh, dpos, dcls]);
      if (!cls.requiresGrad) { dcls.dispose(); dcls = null; }
      if (!pos.requiresGrad) { dpos.dispose(); dpos = null; }
    }
    return [dpatches, dcls, dpos];
  });
}

/** h[:, start : start+count, :] of h [B, S, D] as a new tensor of `outShape` ([B, count, D] or [B, D]); not recorded. */
function tokenSliceRaw(h: Tensor, start: number, count: number, outShape: readonly number[]): Tensor {
  const [batch, seqLen, dim] = h.shape;
  const out = Tensor.empty(outShape, { device: h.device });
  dispatch('token_slice', out.size, { n: batch * count * dim, dim, src_len: seqLen, dst_len: count, start }, [h, out]);
  return out;
}

/** Places x (B*count*D values) at tokens start.. of an otherwise zero tensor `outShape` [B, S, D]; not recorded. */
function tokenPadRaw(x: Tensor, start: number, count: number, outShape: readonly number[]): Tensor {
  const [, seqLen, dim] = outShape;
  const out = Tensor.empty(outShape, { device: x.device });
  dispatch('token_pad', out.size, { n: out.size, dim, src_len: count, dst_len: seqLen, start }, [x, out]);
  return out;
}

/** h[:, index, :] of h [B, S, D] as [B, D] (the [CLS] token by default); negative index counts from the end. */
export function selectToken(h: Tensor, index = 0): Tensor {
  expectShape('selectToken', 'h', h, 3, '[B, S, D]');
  const [batch, seqLen, dim] = h.shape;
  if (!Number.isInteger(index) || index < -seqLen || index >= seqLen) {
    throw new Error(`selectToken: index ${index} is out of range for ${seqLen} tokens (h [${h.shape}])`);
  }
  const token = index < 0 ? index + seqLen : index;
  const out = tokenSliceRaw(h, token, 1, [batch, dim]);
  return record(out, 'selectToken', [h], (dout) => [tokenPadRaw(dout, token, 1, h.shape)]);
}
