// Softmax attention as in Hugging Face ViTSelfAttention (shaders/attention.wgsl), on the merged
// [B, S, H*hd] layout of the query/key/value Linear outputs: no head split or merge copies.
//   scores = q_h k_h^T * scale; p = softmax(scores); p' = dropout(p) * headMask[h]; context_h = p' v_h
import { Tensor } from '../tensor.ts';
import type { Device } from '../gpu/device.ts';
import { record } from '../autograd.ts';
import { matmulKernel, matmulRaw } from './matmul.ts';
import { kernelVariants } from './variants.ts';
import { wgsl } from './wgsl.generated.ts';

export interface AttentionOptions {
  heads: number;
  /** multiplies q k^T; default 1 / sqrt(head dim) */
  scale?: number;
  /** one factor per head (H values), multiplied into the probabilities after dropout; not trainable */
  headMask?: Tensor | readonly number[] | null;
  /** attention_probs_dropout_prob; pass 0 outside training */
  dropout?: number;
  /** dropout seed: the mask is a hash of (seed, index into [B, H, S, S]) */
  seed?: number;
  /** also return p' [B, H, S, S] (HF's `attentions`), not differentiable */
  returnProbs?: boolean;
}

export interface AttentionResult {
  /** [B, S, H*hd] */
  context: Tensor;
  /** [B, H, S, S] probabilities after dropout and head mask, when `returnProbs` */
  probs: Tensor | null;
}

const WG = 64;
/** the register tile of batched_matmul (TM = TN in the shader) */
const TILE = 8;

/** Where element (row, col) of one (batch, head) matrix lives in a flat buffer. */
interface Layout { batch: number; head: number; row: number; col: number }

const transpose = (l: Layout): Layout => ({ ...l, row: l.col, col: l.row });

/** A layout as matmulRaw's operand: stored row-major (col 1) or transposed (row 1), with its row pitch. */
function asOperand(l: Layout): { trans: boolean; ld: number } | null {
  if (l.col === 1) return { trans: false, ld: l.row };
  if (l.row === 1) return { trans: true, ld: l.col };
  return null;
}

// The kernels for CPU rasterisers with subgroups (lavapipe's texture kernel, SwiftShader's subgroup4) beat
// batched_matmul on the attention products too, through per-head strides.
const usesTextureMatmul = (device: Device) =>
  ['matmul_texture', 'matmul_subgroup4'].includes(matmulKernel(kernelVariants(device).matmul, device).entry);

/**
 * C[b,h] = alpha * A[b,h] (m x k) B[b,h] (k x n), every operand addressed through its layout. Where the
 * linear layers' texture kernel runs (lavapipe), it does this too via per-head strides: faster
 * than attention.wgsl's batched_matmul, which stays for the rest (the plain register kernel is 2-3x slower).
 */
function batchedMatmul(
  a: Tensor, aLayout: Layout, b: Tensor, bLayout: Layout, c: Tensor, cLayout: Layout,
  dims: { m: number; n: number; k: number; batch: number; heads: number }, alpha = 1,
): void {
  const { m, n, k, batch, heads } = dims;
  const device = c.device;
  const opA = asOperand(aLayout), opB = asOperand(bLayout);
  if (usesTextureMatmul(device) && opA && opB && cLayout.col === 1) {
    matmulRaw(a, b, c, {
      M: m, N: n, K: k, batch: batch * heads, heads, alpha,
      transA: opA.trans, transB: opB.trans, ldA: opA.ld, ldB: opB.ld, ldC: cLayout.row,
      batchStrideA: aLayout.batch, batchStrideB: bLayout.batch, batchStrideC: cLayout.batch,
      headStrideA: aLayout.head, headStrideB: bLayout.head, headStrideC: cLayout.head,
    });
    return;
  }
  const invocations = batch * heads * Math.ceil(m / TILE) * Math.ceil(n / TILE);
  if (invocations === 0) return;
  const operand = (name: string, l: Layout) => ({
    [`${name}_batch`]: l.batch, [`${name}_head`]: l.head, [`${name}_row`]: l.row, [`${name}_col`]: l.col,
  });
  device.dispatch({
    shader: wgsl.attention, entry: 'batched_matmul', constants: { WG },
    uniforms: { m, n, k, heads, batches: batch * heads, ...operand('a', aLayout), ...operand('b', bLayout), ...operand('c', cLayout), alpha },
    bindings: [a.binding, b.binding, c.binding],
    workgroups: device.grid(invocations, WG),
  });
}

interface MaskSpec { dropout: number; seed: number; headMask: Tensor | null }

/**
 * One of the row kernels over the [B, H, S, S] buffers (rows `pitch` apart). softmax_forward: `main` in
 * place. softmax_backward: `main` = dP' -> dS in place, `probs` = p. apply_mask: `main` = p -> `probs` = p'.
 * unpad_rows: `main` (padded rows) -> `probs` (dense).
 */
function rowKernel(
  entry: 'softmax_forward' | 'softmax_backward' | 'apply_mask' | 'unpad_rows',
  main: Tensor, probs: Tensor | null, dims: { batch: number; heads: number; seq: number; pitch: number },
  mask: MaskSpec, scale: number,
): void {
  const { batch, heads, seq, pitch } = dims;
  const rows = batch * heads * seq;
  const device = main.device;
  let bindings = [main.binding];
  if (probs) {
    // Without a head mask its binding still sits in the auto layout: bind the read-only p there.
    const readOnlyP = entry === 'apply_mask' ? main : probs;
    bindings = entry === 'unpad_rows' ? [main.binding, probs.binding]
      : [main.binding, (mask.headMask ?? readOnlyP).binding, probs.binding];
  }
  device.dispatch({
    shader: wgsl.attention, entry,
    constants: entry === 'softmax_forward' || entry === 'unpad_rows'
      ? { WG }
      : { WG, DROPOUT: mask.dropout > 0 ? 1 : 0, HEAD_MASK: mask.headMask ? 1 : 0 },
    uniforms: { rows, len: seq, heads, seed: mask.seed >>> 0, pitch, scale, drop: mask.dropout, keep_scale: 1 / (1 - mask.dropout) },
    bindings,
    workgroups: device.grid(rows, WG),
  });
}

/**
 * Multi-head softmax attention on [B, S, H*hd] inputs; returns the context in the same layout.
 * Recorded by autograd on `context` (gradients for q, k and v).
 */
export function attention(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions): AttentionResult {
  if (q.shape.length !== 3) throw new Error(`attention: q must be [B, S, H*hd], got [${q.shape}]`);
  const [batch, seq, width] = q.shape;
  for (const [name, t] of [['k', k], ['v', v]] as const) {
    if (t.shape.length !== 3 || t.shape.some((d, i) => d !== q.shape[i])) {
      throw new Error(`attention: ${name} [${t.shape}] does not match q [${q.shape}]`);
    }
  }
  const heads = opts.heads;
  if (!Number.isInteger(heads) || heads <= 0 || width % heads !== 0) {
    throw new Error(`attention: ${width} features do not split into ${heads} heads`);
  }
  const headDim = width / heads;
  const scale = opts.scale ?? 1 / Math.sqrt(headDim);
  const dropout = opts.dropout ?? 0;
  if (!(dropout >= 0 && dropout < 1)) throw new Error(`attention: dropout must be in [0, 1), got ${dropout}`);

  let headMask: Tensor | null = null;
  let ownsHeadMask = false;
  if (opts.headMask) {
    if (opts.headMask instanceof Tensor) {
      headMask = opts.headMask;
    } else {
      headMask = Tensor.fromArray(Float32Array.from(opts.headMask), [opts.headMask.length], { device: q.device });
      ownsHeadMask = true;
    }
    if (headMask.size !== heads) {
      throw new Error(`attention: head mask has ${headMask.size} values for ${heads} heads`);
    }
  }
  const mask: MaskSpec = { dropout, seed: opts.seed ?? 0, headMask };
  const masked = dropout > 0 || headMask !== null;

  const device = q.device;
  // Score rows padded to 256 bytes where the texture matmul runs: it then copies them into its textures
  // instead of packing them (the padding is never read as data).
  const pitch = usesTextureMatmul(device) ? Math.ceil(seq / 64) * 64 : seq;
  const dims = { batch, heads, seq, pitch };
  const tokens: Layout = { batch: seq * width, head: headDim, row: width, col: 1 };
  const square: Layout = { batch: heads * seq * pitch, head: seq * pitch, row: pitch, col: 1 };

  // p: scores, then the softmax in place; p' (masked) only when dropout or a head mask is on.
  const p = Tensor.empty([batch, heads, seq, pitch], { device });
  batchedMatmul(q, tokens, k, transpose(tokens), p, square, { m: seq, n: seq, k: headDim, batch, heads }, scale);
  rowKernel('softmax_forward', p, null, dims, mask, scale);
  const pMasked = masked ? Tensor.empty(p.shape, { device }) : null;
  if (pMasked) rowKernel('apply_mask', p, pMasked, dims, mask, scale);
  const pUsed = pMasked ?? p;
  const context = Tensor.empty(q.shape, { device });
  batchedMatmul(pUsed, square, v, tokens, context, tokens, { m: seq, n: headDim, k: seq, batch, heads });

  let probs: Tensor | null = null;
  if (opts.returnProbs && pitch === seq) {
    probs = pUsed.view(pUsed.shape);
  } else if (opts.returnProbs) {
    probs = Tensor.empty([batch, heads, seq, seq], { device });
    rowKernel('unpad_rows', pUsed, probs, dims, mask, scale);
  }
  pMasked?.dispose(); // the view (if any) keeps its storage alive

  // record() disposes these at once when no input needs a gradient.
  const saved = ownsHeadMask ? [p, headMask!] : [p];
  record(context, 'attention', [q, k, v], (dContext) => {
    const sq = { batch, heads };
    // dV = p'^T dC, with p' regenerated from p and the hashed mask.
    let dv: Tensor | null = null;
    if (v.requiresGrad) {
      let pm = p;
      if (masked) {
        pm = Tensor.empty(p.shape, { device });
        rowKernel('apply_mask', p, pm, dims, mask, scale);
      }
      dv = Tensor.empty(v.shape, { device });
      batchedMatmul(pm, transpose(square), dContext, tokens, dv, tokens, { m: seq, n: headDim, k: seq, ...sq });
      if (pm !== p) pm.dispose();
    }
    let dq: Tensor | null = null;
    let dk: Tensor | null = null;
    if (q.requiresGrad || k.requiresGrad) {
      // dS (scaled) over the [B, H, S, S] buffer: dP' = dC V^T, then the softmax backward in place.
      const dS = Tensor.empty(p.shape, { device });
      batchedMatmul(dContext, tokens, v, transpose(tokens), dS, square, { m: seq, n: seq, k: headDim, ...sq });
      rowKernel('softmax_backward', dS, p, dims, mask, scale);
      if (q.requiresGrad) {
        dq = Tensor.empty(q.shape, { device });
        batchedMatmul(dS, square, k, tokens, dq, tokens, { m: seq, n: headDim, k: seq, ...sq });
      }
      if (k.requiresGrad) {
        dk = Tensor.empty(k.shape, { device });
        batchedMatmul(dS, transpose(square), q, tokens, dk, tokens, { m: seq, n: headDim, k: seq, ...sq });
      }
      dS.dispose();
    }
    return [dq, dk, dv];
  }, saved);
  return { context, probs };
}
