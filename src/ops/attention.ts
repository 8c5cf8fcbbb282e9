// Softmax attention as in Hugging Face ViTSelfAttention, on the merged [B, S, H*hd] layout of the
// query/key/value Linear outputs: no head split or merge copies.
//   scores = q_h k_h^T * scale; p = softmax(scores); p' = dropout(p) * headMask[h]; context_h = p' v_h
// Two paths (kernelVariants(device).attention): fused (shaders/attention_fused*.wgsl: one kernel
// forward, online softmax, nothing of size S^2) and unfused (shaders/attention.wgsl: matmuls around a
// [B, H, S, S] score buffer; the reference, and the path for head dims past the fused kernels' 64).
import { Tensor } from '../tensor.ts';
import type { Device } from '../gpu/device.ts';
import { record } from '../autograd.ts';
import { matmulKernel, matmulRaw } from './matmul.ts';
import { LONG_SEQUENCE, kernelVariants, type AttentionVariant } from './variants.ts';
import { scratchTextures, type ScratchTexture } from './scratch-textures.ts';
import { wgsl } from '../gpu/wgsl.generated.ts';
import { shaderConstant } from '../gpu/shaders.ts';

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
const TILE = shaderConstant(wgsl.attention, 'TM');

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
  const device = q.device;
  const variant = attentionKernel(device, { batch, seq, heads, headDim });
  if (variant !== 'unfused') {
    const dims = { batch, seq, heads, headDim, scale };
    return fusedAttention(q, k, v, dims, mask, variant, !!opts.returnProbs, ownsHeadMask);
  }
  const masked = dropout > 0 || headMask !== null;

  const pitch = scorePitch(device, seq);
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

// ---- fused (shaders/attention_fused.wgsl, attention_fused_texture.wgsl) -------------------------------

/** The fused kernels keep a head row in registers: MAX_HD4 texels of 4. */
/** pack_heads' workgroup (texels, rows) */
const PACK_WG = [shaderConstant(wgsl.attention_fused, 'PACK_X'), shaderConstant(wgsl.attention_fused, 'PACK_Y')] as const;
const FUSED_MAX_HEAD_DIM = 4 * shaderConstant(wgsl.attention_fused, 'MAX_HD4');
type FusedVariant = 'fused-tiles' | 'fused-texture';
type FusedEntry = 'forward' | 'backward_dq' | 'backward_dkdv';
/** the subgroup width the texture kernels need */
const TEXTURE_LANES = shaderConstant(wgsl.attention_fused_texture, 'LANES');
/** query (key) rows per workgroup of each kernel: ROWS in the tile kernels; FROWS, QROWS (KROWS) per lane in the texture kernels */
const TILE_ROWS = shaderConstant(wgsl.attention_fused, 'ROWS');
const FUSED_ROWS: Record<FusedVariant, Record<FusedEntry, number>> = {
  'fused-tiles': { forward: TILE_ROWS, backward_dq: TILE_ROWS, backward_dkdv: TILE_ROWS },
  'fused-texture': {
    forward: TEXTURE_LANES * shaderConstant(wgsl.attention_fused_texture, 'FROWS'),
    backward_dq: TEXTURE_LANES * shaderConstant(wgsl.attention_fused_texture, 'QROWS'),
    backward_dkdv: TEXTURE_LANES * shaderConstant(wgsl.attention_fused_texture, 'KROWS'),
  },
};

/**
 * Tests lower the texture height the texture kernels plan with (0: the device's maxTextureDimension2D) to
 * reach their batch runs, and turn off `tailPipeline` (the last, partial block of rows by its own pipeline)
 * to compare its bits with the whole-block pipeline's.
 */
export const fusedAttentionConfig = { textureRows: 0, tailPipeline: true };
const textureRows = (device: Device) => fusedAttentionConfig.textureRows || device.gpu.limits.maxTextureDimension2D;

/**
 * The attention path that runs on a device: the chosen variant, or 'unfused' where the fused kernels
 * cannot: head dims past 64, and the texture kernels without 8-lane subgroups or with the H * S head
 * rows of one batch item past the textures' height.
 */
export function attentionKernel(
  device: Device, d: { batch?: number; seq: number; heads: number; headDim: number },
  variant: AttentionVariant = d.seq > LONG_SEQUENCE ? kernelVariants(device).attentionLong : kernelVariants(device).attention,
): AttentionVariant {
  const resolved = runnableVariant(device, d, variant);
  // today's path cannot bind a score buffer past the device's limit (e.g. ViT-B/16 @384 at batch 8 on
  // lavapipe: 142 MB against 128 MiB); a fused kernel that runs here needs none
  if (resolved === 'unfused' && d.batch !== undefined && attentionScoreBytes(device, { batch: d.batch, ...d }) > device.gpu.limits.maxStorageBufferBindingSize) {
    const fused = (device.isCPU ? ['fused-texture', 'fused-tiles'] as const : ['fused-tiles', 'fused-texture'] as const)
      .find((v) => runnableVariant(device, d, v) === v);
    if (fused) return fused;
  }
  return resolved;
}

/** Score rows padded to 256 bytes where the texture matmul runs: it then copies them into its textures instead of packing them. */
function scorePitch(device: Device, seq: number): number {
  return usesTextureMatmul(device) ? Math.ceil(seq / 64) * 64 : seq;
}

/** Bytes of the [B, H, S, S'] score buffer of today's (unfused) path. */
export function attentionScoreBytes(device: Device, d: { batch: number; seq: number; heads: number }): number {
  return 4 * d.batch * d.heads * d.seq * scorePitch(device, d.seq);
}

/** The variant itself, or 'unfused' where its kernel cannot run these dims on this device. */
function runnableVariant(device: Device, d: { seq: number; heads: number; headDim: number }, variant: AttentionVariant): AttentionVariant {
  if (variant === 'unfused' || d.headDim > FUSED_MAX_HEAD_DIM) return 'unfused';
  if (variant === 'fused-texture') {
    const subgroups = device.features.has('subgroups') && device.subgroupMinSize >= TEXTURE_LANES;
    if (!subgroups || d.heads * d.seq > textureRows(device)) return 'unfused';
  }
  return variant;
}

interface FusedDims { batch: number; seq: number; heads: number; headDim: number; scale: number }

/** The tensors a fused kernel reads; those the texture kernels read as textures are named in `textures`. */
interface FusedOperands { q: Tensor; k: Tensor; v: Tensor; dOut?: Tensor }

/**
 * One fused kernel over the whole batch: `entry` + '_tiles' or '_texture'. Bindings: q, k, v, head mask,
 * `outputs[0]`, stats, then dO and `outputs[1]` where given. The texture kernels read `textures` (names of
 * operands) from textures, filled per run of batch items that fits the texture height.
 */
function fusedKernel(
  variant: FusedVariant, entry: FusedEntry, ops: FusedOperands, textures: (keyof FusedOperands)[],
  outputs: Tensor[], stats: Tensor, d: FusedDims, mask: MaskSpec,
): void {
  const device = stats.device;
  const hd4 = Math.ceil(d.headDim / 4);
  const rows = FUSED_ROWS[variant][entry];
  const common = {
    constants: { DROPOUT: mask.dropout > 0 ? 1 : 0, HEAD_MASK: mask.headMask ? 1 : 0, HD4: hd4 },
    label: `attention_fused:${entry}_${variant.slice(6)}`,
  };
  // With no head mask its binding still sits in the auto layout: k (read-only everywhere) stands in.
  const bind = (tex: Partial<Record<keyof FusedOperands, ScratchTexture>>) => {
    const of = (name: keyof FusedOperands) => tex[name]?.view ?? ops[name]!.binding;
    const list = [of('q'), of('k'), of('v'), (mask.headMask ?? ops.k).binding, outputs[0].binding, stats.binding];
    if (ops.dOut) list.push(of('dOut'));
    if (outputs[1]) list.push(outputs[1].binding);
    return list;
  };
  if (variant === 'fused-tiles') {
    device.dispatch({
      ...common, shader: wgsl.attention_fused, entry: `${entry}_tiles`,
      uniforms: fusedUniforms(d, mask, 0, 0),
      bindings: bind({}),
      workgroups: [Math.ceil(d.seq / rows), d.heads, d.batch],
    });
    return;
  }
  // runs of batch items whose head rows fit in one texture
  const run = Math.min(d.batch, Math.floor(textureRows(device) / (d.heads * d.seq)));
  const specs = textures.map((name) => ({ role: `attention ${name}`, width: hd4, height: run * d.heads * d.seq }));
  for (let b0 = 0; b0 < d.batch; b0 += run) {
    const n = Math.min(run, d.batch - b0);
    const tex = scratchTextures(device, specs);
    const filled: Partial<Record<keyof FusedOperands, ScratchTexture>> = {};
    textures.forEach((name, i) => {
      fillHeadTexture(ops[name]!, tex[i], d, mask, b0, n);
      filled[name] = tex[i];
    });
    // A last block of at most one row per lane after whole ones (at S = 577 the 10th block of 64 queries
    // holds one, and cost as much as each of the other nine) runs by a pipeline that computes only that
    // row: a tenth of the forward's time saved at 577 tokens. Only then: each pipeline costs seconds to compile.
    const whole = Math.floor(d.seq / rows);
    const tail = d.seq - whole * rows;
    const parts = fusedAttentionConfig.tailPipeline && whole > 0 && tail > 0 && tail <= TEXTURE_LANES
      ? [{ blocks: whole, block0: 0, last: false }, { blocks: 1, block0: whole, last: true }]
      : [{ blocks: Math.ceil(d.seq / rows), block0: 0, last: false }];
    for (const { blocks, block0, last } of parts) {
      device.dispatch({
        ...common, shader: wgsl.attention_fused_texture, entry: `${entry}_texture`,
        constants: { ...common.constants, TAIL: last ? 1 : 0 },
        label: last ? `${common.label}_tail` : common.label,
        uniforms: fusedUniforms(d, mask, b0, 0, block0),
        bindings: bind(filled),
        workgroups: [blocks, d.heads, n],
      });
    }
  }
}

function fusedUniforms(d: FusedDims, mask: MaskSpec, batch0: number, rows: number, block0 = 0) {
  return {
    seq: d.seq, heads: d.heads, head_dim: d.headDim, width: d.heads * d.headDim, batch0, rows, block0,
    seed: mask.seed >>> 0, scale: d.scale, drop: mask.dropout, keep_scale: 1 / (1 - mask.dropout),
  };
}

/**
 * The head rows of batch items b0 .. b0 + n - 1 of a [B, S, H*hd] tensor into a texture
 * (attention_fused_texture.wgsl describes the image): one copy per (item, head) where head rows are whole
 * texels and tokens 256-byte aligned (a memcpy on lavapipe), else packed by pack_heads.
 */
function fillHeadTexture(src: Tensor, tex: ScratchTexture, d: FusedDims, mask: MaskSpec, b0: number, n: number): void {
  const device = src.device;
  const width = d.heads * d.headDim;
  const hd4 = Math.ceil(d.headDim / 4);
  if (d.headDim % 4 === 0 && (width * 4) % 256 === 0) {
    for (let z = 0; z < n; z++) {
      for (let h = 0; h < d.heads; h++) {
        const offset = ((b0 + z) * d.seq * width + h * d.headDim) * 4;
        device.copyToTexture({ buffer: src.buffer, offset, bytesPerRow: width * 4 }, tex.texture, [hd4, d.seq], (z * d.heads + h) * d.seq);
      }
    }
    return;
  }
  const rows = n * d.heads * d.seq;
  device.dispatch({
    shader: wgsl.attention_fused, entry: 'pack_heads', constants: { HD4: hd4 },
    uniforms: fusedUniforms(d, mask, b0, rows),
    bindings: [src.binding, tex.view],
    workgroups: [Math.ceil(hd4 / PACK_WG[0]), Math.ceil(rows / PACK_WG[1]), 1],
  });
}

/** attention() on the fused kernels: forward saves one (log-sum-exp, D) pair per [B, H, S] row. */
function fusedAttention(
  q: Tensor, k: Tensor, v: Tensor, d: FusedDims, mask: MaskSpec, variant: FusedVariant, returnProbs: boolean, ownsHeadMask: boolean,
): AttentionResult {
  const device = q.device;
  const { batch, seq, heads } = d;
  const rows = batch * heads * seq;
  const stats = Tensor.empty([batch, heads, seq, 2], { device });
  const context = Tensor.empty(q.shape, { device });
  fusedKernel(variant, 'forward', { q, k, v }, ['q', 'k', 'v'], [context], stats, d, mask);

  let probs: Tensor | null = null;
  if (returnProbs) {
    probs = Tensor.empty([batch, heads, seq, seq], { device });
    device.dispatch({
      shader: wgsl.attention_fused, entry: 'attention_probs',
      constants: { WG, DROPOUT: mask.dropout > 0 ? 1 : 0, HEAD_MASK: mask.headMask ? 1 : 0, HD4: Math.ceil(d.headDim / 4) },
      uniforms: fusedUniforms(d, mask, 0, rows),
      bindings: [q.binding, k.binding, stats.binding, (mask.headMask ?? k).binding, probs.binding],
      workgroups: device.grid(rows * seq, WG),
    });
  }

  // record() disposes these at once when no input needs a gradient; the view keeps the context's
  // storage (D = rowsum(dO * context)) whatever the caller does with it.
  const saved = [stats, context.view(context.shape), ...(ownsHeadMask ? [mask.headMask!] : [])];
  const contextSaved = saved[1];
  record(context, 'attention', [q, k, v], (dContext) => {
    device.dispatch({
      shader: wgsl.attention_fused, entry: 'attention_delta', constants: { WG },
      uniforms: fusedUniforms(d, mask, 0, rows),
      bindings: [contextSaved.binding, dContext.binding, stats.binding],
      workgroups: device.grid(rows, WG),
    });
    const ops = { q, k, v, dOut: dContext };
    let dq: Tensor | null = null;
    if (q.requiresGrad) {
      dq = Tensor.empty(q.shape, { device });
      fusedKernel(variant, 'backward_dq', ops, ['k', 'v'], [dq], stats, d, mask);
    }
    let dk: Tensor | null = null;
    let dv: Tensor | null = null;
    if (k.requiresGrad || v.requiresGrad) {
      dk = Tensor.empty(k.shape, { device });
      dv = Tensor.empty(v.shape, { device });
      fusedKernel(variant, 'backward_dkdv', ops, ['q', 'k', 'v', 'dOut'], [dk, dv], stats, d, mask);
      if (!k.requiresGrad) { dk.dispose(); dk = null; }
      if (!v.requiresGrad) { dv.dispose(); dv = null; }
    }
    return [dq, dk, dv];
  }, saved);
  return { context, probs };
}
