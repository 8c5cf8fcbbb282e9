// Matrix multiplies (shaders/matmul.wgsl, matmul_texture.wgsl): matmulRaw (unrecorded, for other ops; its
// epilogues serve the fused ops of fused.ts), matmul (batched, with transposes and bias) and linear (torch
// nn.Linear), both recorded for autograd.
import { Tensor } from '../tensor.ts';
import { record } from '../autograd.ts';
import type { Device, Shader } from '../gpu/device.ts';
import { sumRowsRaw } from './reduce.ts';
import { kernelVariants, type KernelVariant } from './variants.ts';
import { scratchTextures } from './scratch-textures.ts';
import { wgsl } from '../gpu/wgsl.generated.ts';
import { shaderConstant } from '../gpu/shaders.ts';

export interface MatmulParams {
  M: number;
  N: number;
  K: number;
  batch?: number;
  /** a holds A^T ([K, M] per batch item) */
  transA?: boolean;
  /** b holds B^T ([N, K] per batch item) */
  transB?: boolean;
  /** elements between batch items (with `heads`: groups of them); default M*K, K*N, M*N (times heads); 0 shares one operand across the batch */
  batchStrideA?: number;
  batchStrideB?: number;
  batchStrideC?: number;
  /** elements before batch item 0 (default 0) */
  offsetA?: number;
  offsetB?: number;
  offsetC?: number;
  /** row pitch of each operand as stored (default its row length: K or M for a, N or K for b, N for out) */
  ldA?: number;
  ldB?: number;
  ldC?: number;
  /**
   * split the batch into (batch / heads) x heads items (default 1): item i starts at
   * offset + floor(i / heads) * batchStride + (i % heads) * headStride, e.g. head slices of [B, S, H*hd];
   * headStride defaults to M*K, K*N, M*N
   */
  heads?: number;
  headStrideA?: number;
  headStrideB?: number;
  headStrideC?: number;
  /** [N], added to every row */
  bias?: Tensor | null;
  /** out += result instead of out = result */
  accumulate?: boolean;
  /** multiplies A·B (not the bias or the accumulated value) */
  alpha?: number;
  /** epilogue: out = gelu(result), torch's exact-erf GELU (result: after bias and accumulation) */
  gelu?: boolean;
  /** with gelu: receives the result before the GELU (for backward), laid out like out */
  preact?: Tensor | null;
  /** epilogue: out = result + residual, laid out like out (same offset, strides and pitch) */
  residual?: Tensor | null;
  /** epilogue: out = result * gelu'(geluGradAt), the GELU's backward on a product (its input, laid out like out) */
  geluGradAt?: Tensor | null;
  /**
   * [M]: receives the sums over k of op(A) (+= when accumulating), for a dense a = A^T [K, M] (transA,
   * one batch item): a linear layer's bias gradient beside dW = dy^T x, from the texture kernel's loads
   * (other kernels sum in a pass of their own)
   */
  sumA?: Tensor | null;
  variant?: KernelVariant;
  /**
   * K split into this many slices, each a batch item of a partial product, then summed (default: chosen
   * on GPU adapters for one-item products with few output tiles and a long K, such as dW = dy^T x)
   */
  splitK?: number;
}

// matmul.wgsl's EPILOGUE values
const EPILOGUE = { none: 0, gelu: 1, geluPreact: 2, residual: 3, geluGrad: 4 } as const;

// Must match the shaders: RT_M, WG_N (one 8-lane AVX2 vector on lavapipe, 4 columns per lane), TS,
// matmul_texture's LANES, and pack_operand's workgroup.
const REGISTER_ROWS = shaderConstant(wgsl.matmul, 'RT_M');
const REGISTER_LANES = 8;
const SHARED_TILE = shaderConstant(wgsl.matmul, 'TS');
const TEXTURE_LANES = shaderConstant(wgsl.matmul_texture, 'LANES');
const SUBGROUP4_ROWS = shaderConstant(wgsl.matmul_subgroup4, 'ROWS');
const SUBGROUP4_COLS = 4 * shaderConstant(wgsl.matmul_subgroup4, 'LANES');
const PACK_WG = [shaderConstant(wgsl.matmul_texture, 'PACK_X'), shaderConstant(wgsl.matmul_texture, 'PACK_Y')] as const;

/**
 * Tests lower the texture height matmul_texture plans with (0: the device's maxTextureDimension2D) to reach its
 * splits, and force K slices on a CPU adapter (splitK: 0 = the adapter's choice).
 */
export const matmulConfig = { textureRows: 0, splitK: 0 };

/** Output tiles a GPU should have in flight (2 per multiprocessor of a large GPU); fewer tiles split K. */
const SPLIT_K_TILES = 256;
/** K per slice at least */
const SPLIT_K_MIN = 256;
const MAX_GROUPS = 65535;

/**
 * The kernel that runs a variant on a device with these features: 'register' reads packed textures and
 * shares A by subgroup shuffles where the device has `subgroups` (shaders/matmul_texture.wgsl, which
 * Device skips elsewhere; subgroups narrower than 8 lanes are not used), else each lane loads A itself.
 * 'subgroup4' (shaders/matmul_subgroup4.wgsl) needs subgroups of 4 lanes or more; without, the register kernel runs.
 */
export function matmulKernel(
  variant: KernelVariant, device: { features: ReadonlySet<string>; subgroupMinSize: number },
): { shader: Shader; entry: string } {
  if (variant === 'shared') return { shader: wgsl.matmul, entry: 'matmul_shared' };
  const subgroups = device.features.has('subgroups');
  if (variant === 'subgroup4' && subgroups && device.subgroupMinSize >= 4) {
    return { shader: wgsl.matmul_subgroup4, entry: 'matmul_subgroup4' };
  }
  return variant === 'register' && subgroups && device.subgroupMinSize >= TEXTURE_LANES
    ? { shader: wgsl.matmul_texture, entry: 'matmul_texture' }
    : { shader: wgsl.matmul, entry: 'matmul_register' };
}

/**
 * Slices of K for a one-item product on a GPU adapter: a 192 x 192 dW over 12,608 rows (ViT-Ti, batch
 * 64) is 9 output tiles, so 9 workgroups would each walk all of K (98 ms of a 195 ms step on an H200).
 * CPU adapters: 1 (their kernels have few, large workgroups anyway, and their float order stays).
 */
export function splitKCount(isCPU: boolean, M: number, N: number, K: number): number {
  if (isCPU) return 1;
  const tiles = Math.ceil(M / SHARED_TILE) * Math.ceil(N / SHARED_TILE);
  const splits = Math.max(1, Math.min(Math.floor(K / SPLIT_K_MIN), Math.ceil(SPLIT_K_TILES / tiles)));
  // a count that divides K (B*S rows: 1576 = 8 x 197) needs no trailing short slice, one dispatch fewer
  for (let d = splits; d >= Math.ceil(splits / 2) && d > 1; d--) if (K % d === 0) return d;
  return splits;
}

/**
 * out (= or +=) alpha * op(A) op(B) as `splits` partial products over slices of K (batch items of one
 * product, a trailing shorter slice as one more), then their sum in a fixed order: deterministic.
 */
function splitKMatmul(a: Tensor, b: Tensor, out: Tensor, q: {
  M: number; N: number; K: number; transA: boolean; transB: boolean; offsetA: number; offsetB: number;
  ldA: number; ldB: number; alpha: number; accumulate: boolean; variant: KernelVariant;
}, splits: number): void {
  const { M, N, K, transA, transB, ldA, ldB, variant } = q;
  // where a step along K moves along a stored row (A not transposed, or B transposed), slices of a
  // multiple of 4 keep vec4 loads; where it moves whole rows (dW = dy^T x) any slice does
  const alongRows = !transA || transB;
  const slice = alongRows ? Math.ceil(K / splits / 4) * 4 : Math.ceil(K / splits);
  const whole = Math.floor(K / slice), rest = K - whole * slice;
  // one slice further along K: rows of a stored [K, *] operand, columns of a stored [*, K] one
  const stepA = transA ? slice * ldA : slice, stepB = transB ? slice : slice * ldB;
  const partial = Tensor.empty([whole + (rest > 0 ? 1 : 0), M, N], { device: out.device });
  const common = { M, N, transA, transB, ldA, ldB, variant, splitK: 1 };
  matmulRaw(a, b, partial, { ...common, K: slice, batch: whole, offsetA: q.offsetA, offsetB: q.offsetB, batchStrideA: stepA, batchStrideB: stepB });
  if (rest > 0) {
    matmulRaw(a, b, partial, { ...common, K: rest, offsetA: q.offsetA + whole * stepA, offsetB: q.offsetB + whole * stepB, offsetC: whole * M * N });
  }
  sumRowsRaw(partial, M * N, q.alpha, out, q.accumulate ? 1 : 0);
  partial.dispose();
}

const spares = new WeakMap<Device, GPUBuffer[]>();

/**
 * Writable buffers bound for outputs not asked for (preact, sumA): writable bindings may not alias
 * out or each other.
 */
function spareOutput(device: Device, i: number): GPUBuffer {
  let list = spares.get(device);
  if (!list) spares.set(device, (list = []));
  return (list[i] ??= device.gpu.createBuffer({ size: 16, usage: GPUBufferUsage.STORAGE, label: `matmul spare output ${i}` }));
}

/** Binding of a whole tensor rounded up to 16 bytes (pool buffers are multiples of 256 bytes). */
function binding16(t: Tensor): { buffer: GPUBuffer; size: number } {
  return { buffer: t.buffer, size: Math.max(16, Math.ceil(t.byteLength / 16) * 16) };
}

/**
 * out[i] = epilogue(alpha * op(A[i]) op(B[i]) (+ bias) (+ out[i] when accumulating)) for each batch item
 * i, without autograd; the epilogue is nothing, the GELU (`gelu`), `+ residual[i]` or
 * `* gelu'(geluGradAt[i])`. a, b and out are float32 tensors read as flat arrays; `p` gives the layout.
 */
export function matmulRaw(a: Tensor, b: Tensor, out: Tensor, p: MatmulParams): void {
  const { M, N, K } = p;
  const batch = p.batch ?? 1;
  const offsetA = p.offsetA ?? 0, offsetB = p.offsetB ?? 0, offsetC = p.offsetC ?? 0;
  const transA = p.transA ?? false, transB = p.transB ?? false;
  // stored rows x row length of each operand
  const [rowsA, colsA] = transA ? [K, M] : [M, K];
  const [rowsB, colsB] = transB ? [N, K] : [K, N];
  const ldA = p.ldA ?? colsA, ldB = p.ldB ?? colsB, ldC = p.ldC ?? N;
  const heads = p.heads ?? 1;
  // by default the batch items lie one after another, whether split into heads or not
  const headA = p.headStrideA ?? M * K, headB = p.headStrideB ?? K * N, headC = p.headStrideC ?? M * N;
  const strideA = p.batchStrideA ?? heads * headA, strideB = p.batchStrideB ?? heads * headB;
  const strideC = p.batchStrideC ?? heads * headC;
  const bias = p.bias ?? null;
  const desc = `M=${M} N=${N} K=${K} batch=${batch}`;
  for (const [v, name] of [[M, 'M'], [N, 'N'], [K, 'K'], [batch, 'batch']] as const) {
    if (!Number.isInteger(v) || v < 0) throw new Error(`matmulRaw: ${name} is ${v}`);
  }
  if (!Number.isInteger(heads) || heads < 1 || batch % heads !== 0) {
    throw new Error(`matmulRaw: batch ${batch} does not split into ${heads} heads`);
  }
  for (const [ld, cols, name] of [[ldA, colsA, 'ldA'], [ldB, colsB, 'ldB'], [ldC, N, 'ldC']] as const) {
    if (!Number.isInteger(ld) || ld < cols) throw new Error(`matmulRaw: ${name} ${ld} is under the row length ${cols}`);
  }
  const sumA = p.sumA ?? null;
  if (sumA && !(transA && batch === 1 && offsetA === 0 && ldA === M && a.size === K * M && sumA.size === M)) {
    throw new Error(`matmulRaw: sumA [${sumA.shape}] needs transA, one batch item, a = A^T exactly [K, M] and M=${M} elements (${desc}, a [${a.shape}])`);
  }
  // the sums of A in a pass of their own: without a product, or where its kernel does not form them
  const sumAApart = () => { if (sumA && M > 0) sumRowsRaw(a, M, 1, sumA, p.accumulate ? 1 : 0); };
  if (M === 0 || N === 0 || batch === 0) { // (K = 0 runs: an empty sum, then the epilogue)
    sumAApart();
    return;
  }
  const fits = (t: Tensor, offset: number, stride: number, head: number, rows: number, cols: number, ld: number, what: string) => {
    if (rows === 0 || cols === 0) return;
    const want = offset + stride * (batch / heads - 1) + head * (heads - 1) + (rows - 1) * ld + cols;
    if (t.size < want) throw new Error(`matmulRaw: ${what} [${t.shape}] has ${t.size} elements, ${desc} reads ${want}`);
  };
  fits(a, offsetA, strideA, headA, rowsA, colsA, ldA, 'a');
  fits(b, offsetB, strideB, headB, rowsB, colsB, ldB, 'b');
  fits(out, offsetC, strideC, headC, M, N, ldC, 'out');
  if (bias && bias.size !== N) throw new Error(`matmulRaw: bias [${bias.shape}] must have N=${N} elements`);
  const residual = p.residual ?? null, geluGradAt = p.geluGradAt ?? null, preact = p.preact ?? null;
  if (+!!residual + +!!p.gelu + +!!geluGradAt > 1) throw new Error('matmulRaw: one epilogue at a time (gelu, residual or geluGradAt)');
  if (preact && !p.gelu) throw new Error('matmulRaw: preact is the input of the GELU epilogue; it needs gelu');
  for (const [t, what] of [[residual, 'residual'], [preact, 'preact'], [geluGradAt, 'geluGradAt']] as const) {
    if (t) fits(t, offsetC, strideC, headC, M, N, ldC, what);
  }
  for (const t of [a, b, bias, residual, preact, geluGradAt, sumA]) {
    if (t && t.buffer === out.buffer) throw new Error('matmulRaw: out must not share storage with a, b, bias, residual, preact, geluGradAt or sumA');
  }
  // (geluGradAt is read through the writable preact binding: it may not share storage with a read-only one)
  const writable = preact ?? geluGradAt;
  for (const [w, what] of [[writable, preact ? 'preact' : 'geluGradAt'], [sumA, 'sumA']] as const) {
    for (const t of [a, b, bias, residual, w === sumA ? writable : null]) {
      if (t && w && t.buffer === w.buffer) throw new Error(`matmulRaw: ${what} must not share storage with the other operands`);
    }
  }
  const epilogue = residual ? EPILOGUE.residual : geluGradAt ? EPILOGUE.geluGrad
    : p.gelu ? (preact ? EPILOGUE.geluPreact : EPILOGUE.gelu) : EPILOGUE.none;
  const device = out.device;
  const variant = p.variant ?? kernelVariants(device).matmul;
  let kernel = matmulKernel(variant, device);
  if (kernel.entry === 'matmul_texture') {
    // (K = 0 needs no textures; an N past the texture height would need the bias split too: rare enough)
    const maxRows = matmulConfig.textureRows || device.gpu.limits.maxTextureDimension2D;
    if (K > 0 && N <= (transB ? maxRows : 4 * maxRows)) {
      // (row blocks would need sumA in blocks: summed apart instead)
      const sumInProduct = M <= maxRows ? sumA : null;
      if (!sumInProduct) sumAApart();
      textureMatmul(a, b, out, {
        M, N, K, items: batch, heads, transA, transB, bias, alpha: p.alpha ?? 1, accumulate: !!p.accumulate, epilogue, residual, preact: writable, sumA: sumInProduct,
        a: { offset: offsetA, stride: strideA, headStride: headA, ld: ldA },
        b: { offset: offsetB, stride: strideB, headStride: headB, ld: ldB },
        c: { offset: offsetC, stride: strideC, headStride: headC, ld: ldC },
      });
      return;
    }
    kernel = { shader: wgsl.matmul, entry: 'matmul_register' };
  }
  sumAApart();
  const splits = p.splitK ?? (matmulConfig.splitK || splitKCount(device.isCPU, M, N, K));
  if (splits > 1 && batch === 1 && epilogue === EPILOGUE.none && !bias && offsetC === 0 && ldC === N && K >= splits) {
    splitKMatmul(a, b, out, { M, N, K, transA, transB, offsetA, offsetB, ldA, ldB, alpha: p.alpha ?? 1, accumulate: !!p.accumulate, variant }, splits);
    return;
  }
  const constants: Record<string, number> = { TRANS_A: +transA, TRANS_B: +transB, ACCUMULATE: +!!p.accumulate, EPILOGUE: epilogue };
  // bias, residual and preact are always bound (b or a spare buffer stands in for one not given): layout
  // 'auto' keeps every binding the code names
  const bindings = [a.binding, b.binding, out.binding, (bias ?? b).binding, (residual ?? b).binding, writable?.binding ?? spareOutput(device, 0)];
  let workgroups: [number, number, number];
  // vec4 loads of an operand: its row length, pitch and start, and each stride in use, are multiples of 4
  const vec4Aligned = (...steps: number[]) => steps.every((v) => v % 4 === 0);
  const alignedB = vec4Aligned(colsB, ldB, offsetB, batch > heads ? strideB : 0, heads > 1 ? headB : 0);
  if (kernel.entry === 'matmul_subgroup4') {
    constants.VEC_B = +alignedB;
    constants.VEC_A = +vec4Aligned(colsA, ldA, offsetA, batch > heads ? strideA : 0, heads > 1 ? headA : 0);
    bindings.push(binding16(b), binding16(a));
    workgroups = [Math.ceil(N / SUBGROUP4_COLS), Math.ceil(M / SUBGROUP4_ROWS), batch];
  } else if (kernel.entry === 'matmul_register') {
    constants.VEC_B = +alignedB;
    constants.WG_N = REGISTER_LANES;
    bindings.push(binding16(b));
    workgroups = [Math.ceil(N / (4 * REGISTER_LANES)), Math.ceil(M / REGISTER_ROWS), batch];
  } else {
    workgroups = [Math.ceil(N / SHARED_TILE), Math.ceil(M / SHARED_TILE), batch];
  }
  if (workgroups.some((g) => g > MAX_GROUPS)) {
    throw new Error(`matmulRaw: ${desc} needs workgroups [${workgroups}], over ${MAX_GROUPS} in a dimension`);
  }
  device.dispatch({
    ...kernel, constants,
    uniforms: {
      M, N, K, strideA, strideB, strideC, offsetA, offsetB, offsetC, hasBias: !!bias, ldA, ldB, ldC,
      heads, headStrideA: headA, headStrideB: headB, headStrideC: headC, alpha: p.alpha ?? 1,
    },
    bindings, workgroups,
  });
}

/**
 * Where an operand's stored rows lie: row r of batch item z = (group g, head h), that is g = floor(z / heads),
 * h = z % heads, starts at offset + g stride + h headStride + r ld.
 */
interface Stored { offset: number; stride: number; headStride: number; ld: number }

/** One product for matmul_texture: op(A) [M, K] and op(B) [K, N] per item, as matmulRaw's parameters. */
interface TextureProduct {
  M: number; N: number; K: number; items: number; heads: number; transA: boolean; transB: boolean;
  a: Stored; b: Stored; c: Stored;
  bias: Tensor | null; alpha: number; accumulate: boolean;
  /** matmul.wgsl's EPILOGUE, with its operands (preact: bound as preact, geluGradAt's too) */
  epilogue: number; residual: Tensor | null; preact: Tensor | null;
  sumA: Tensor | null;
}

const shift = (s: Stored, elements: number): Stored => ({ ...s, offset: s.offset + elements });

/**
 * matmul_texture: copies or packs a and b into scratch textures (one image of each operand as stored,
 * batch items stacked down), then multiplies. Operands taller than the device's textures are split:
 * K into accumulated slices, M into row blocks, the batch into runs of items.
 */
function textureMatmul(a: Tensor, b: Tensor, out: Tensor, q: TextureProduct): void {
  const device = out.device;
  const maxRows = matmulConfig.textureRows || device.gpu.limits.maxTextureDimension2D;
  const { M, N, K, items, heads, transA, transB } = q;
  if (K > maxRows) {
    for (let k0 = 0; k0 < K; k0 += maxRows) {
      textureMatmul(a, b, out, {
        ...q, K: Math.min(maxRows, K - k0), a: shift(q.a, transA ? k0 * q.a.ld : k0), b: shift(q.b, transB ? k0 : k0 * q.b.ld),
        accumulate: q.accumulate || k0 > 0, bias: k0 === 0 ? q.bias : null,
        epilogue: k0 + maxRows >= K ? q.epilogue : EPILOGUE.none, // (of the whole sum)
      });
    }
    return;
  }
  if (M > maxRows) {
    for (let m0 = 0; m0 < M; m0 += maxRows) {
      textureMatmul(a, b, out, {
        ...q, M: Math.min(maxRows, M - m0), a: shift(q.a, transA ? m0 : m0 * q.a.ld), c: shift(q.c, m0 * q.c.ld),
      });
    }
    return;
  }
  // stored rows x row length of each operand per item
  const [rowsA, colsA] = transA ? [K, M] : [M, K];
  const [rowsB, colsB] = transB ? [N, K] : [K, N];
  const fit = Math.floor(maxRows / Math.max(rowsA, rowsB)); // items per texture
  if (items > fit) {
    const groups = items / heads;
    const at = (s: Stored, g: number, h: number) => shift(s, g * s.stride + h * s.headStride);
    if (fit >= heads) {
      // runs of whole groups: item z of a run is still (z / heads, z % heads)
      const run = Math.floor(fit / heads);
      for (let g = 0; g < groups; g += run) {
        const n = Math.min(run, groups - g);
        textureMatmul(a, b, out, { ...q, items: n * heads, a: at(q.a, g, 0), b: at(q.b, g, 0), c: at(q.c, g, 0) });
      }
    } else {
      // runs of heads within one group: as many "heads" as the run has items, so item z is head h + z
      for (let g = 0; g < groups; g++) {
        for (let h = 0; h < heads; h += fit) {
          const n = Math.min(fit, heads - h);
          textureMatmul(a, b, out, { ...q, items: n, heads: n, a: at(q.a, g, h), b: at(q.b, g, h), c: at(q.c, g, h) });
        }
      }
    }
    return;
  }
  const [texA, texB] = scratchTextures(device, [
    { role: 'matmul A', width: Math.ceil(colsA / 4), height: items * rowsA },
    { role: 'matmul B', width: Math.ceil(colsB / 4), height: items * rowsB },
  ]);
  fillOperandTexture(a, texA, q.a, rowsA, colsA, items, heads);
  fillOperandTexture(b, texB, q.b, rowsB, colsB, items, heads);
  const c = q.c;
  const rowGroups = textureRowGroups(M, N, K * items);
  device.dispatch({
    shader: wgsl.matmul_texture, entry: 'matmul_texture',
    constants: { TRANS_A: +transA, TRANS_B: +transB, ACCUMULATE: +q.accumulate, EPILOGUE: q.epilogue, SUM_A: +!!q.sumA, GROUPS: rowGroups },
    uniforms: { M, N, K, strideC: c.stride, offsetC: c.offset, hasBias: !!q.bias, ldC: c.ld, heads, headStrideC: c.headStride, alpha: q.alpha },
    bindings: [texA.view, texB.view, out.binding, (q.bias ?? b).binding, (q.residual ?? b).binding,
      q.preact?.binding ?? spareOutput(device, 0), q.sumA?.binding ?? spareOutput(device, 1)],
    workgroups: [Math.ceil(N / (4 * TEXTURE_LANES)), Math.ceil(M / (rowGroups * TEXTURE_LANES)), items],
  });
}

/**
 * matmul_texture's register tiles of 8 rows per workgroup (its GROUPS): 8 (64 rows, the fastest on
 * lavapipe) for products of 100 MFLOP or more (all of ViT-Ti's at batch 8) unless rounding M up to 64
 * rows computes over 10 % more rows than rounding it up to 32; 4 below that, where the 64-row kernel's
 * compilation (about 3x the 32-row one's on lavapipe, paid once per machine while Mesa's shader cache
 * holds it) would outweigh what it saves. `work` is K times the batch items.
 */
export function textureRowGroups(M: number, N: number, work: number): 4 | 8 {
  if (2 * M * N * work < 1e8) return 4;
  const rows = (g: number) => Math.ceil(M / (g * TEXTURE_LANES)) * g * TEXTURE_LANES;
  return rows(8) <= 1.1 * rows(4) ? 8 : 4;
}

/**
 * Fills a scratch texture with `items` operands of rows x cols as stored (see matmul_texture.wgsl): by
 * copyBufferToTexture where the rows allow it (256-byte row pitch, 16-byte aligned starts, a row rounded
 * up to whole texels still within its pitch and the buffer; a memcpy on lavapipe), else by pack_operand.
 */
function fillOperandTexture(
  src: Tensor, { texture, view }: { texture: GPUTexture; view: GPUTextureView }, s: Stored, rows: number, cols: number, items: number, heads: number,
): void {
  const device = src.device;
  const width = Math.ceil(cols / 4);
  const base = (z: number) => s.offset + Math.floor(z / heads) * s.stride + (z % heads) * s.headStride;
  let lastBase = 0;
  for (let z = 0; z < items; z++) lastBase = Math.max(lastBase, base(z));
  const end = lastBase + (rows - 1) * s.ld + width * 4; // elements the copies reach
  const aligned = width * 4 <= s.ld && (s.ld * 4) % 256 === 0 && s.offset % 4 === 0
    && (items <= heads || s.stride % 4 === 0) && (heads === 1 || s.headStride % 4 === 0) && end * 4 <= src.buffer.size;
  if (aligned) {
    for (let z = 0; z < items; z++) {
      device.copyToTexture({ buffer: src.buffer, offset: base(z) * 4, bytesPerRow: s.ld * 4 }, texture, [width, rows], z * rows);
    }
  } else {
    device.dispatch({
      shader: wgsl.matmul_texture, entry: 'pack_operand',
      uniforms: { rows, cols, ld: s.ld, offset: s.offset, stride: s.stride, heads, headStride: s.headStride },
      bindings: [src.binding, view],
      workgroups: [Math.ceil(width / PACK_WG[0]), Math.ceil(rows / PACK_WG[1]), items],
    });
  }
}

function splitShape(t: Tensor): { batchShape: number[]; rows: number; cols: number } {
  const s = t.shape;
  return { batchShape: s.slice(0, -2), rows: s[s.length - 2], cols: s[s.length - 1] };
}

/**
 * Batched matmul: a [...batch, M, K] ([..., K, M] with transA), b [...batch, K, N] ([..., N, K] with
 * transB); a 2-D operand is shared by every batch item of the other. bias [N] is added to every row.
 * Result [...batch, M, N]. Recorded: gradients for a, b and bias.
 */
export function matmul(
  a: Tensor, b: Tensor,
  opts: { transA?: boolean; transB?: boolean; bias?: Tensor | null; variant?: KernelVariant } = {},
): Tensor {
  const transA = opts.transA ?? false, transB = opts.transB ?? false;
  const bias = opts.bias ?? null;
  const variant = opts.variant;
  const shapes = `a [${a.shape}]${transA ? ' (transA)' : ''} and b [${b.shape}]${transB ? ' (transB)' : ''}`;
  if (a.shape.length < 2 || b.shape.length < 2) throw new Error(`matmul: ${shapes} need at least 2 dims each`);
  const sa = splitShape(a), sb = splitShape(b);
  const [M, K] = transA ? [sa.cols, sa.rows] : [sa.rows, sa.cols];
  const [Kb, N] = transB ? [sb.cols, sb.rows] : [sb.rows, sb.cols];
  if (K !== Kb) throw new Error(`matmul: inner sizes differ (${K} vs ${Kb}) for ${shapes}`);
  const aShared = sa.batchShape.length === 0, bShared = sb.batchShape.length === 0;
  if (!aShared && !bShared && sa.batchShape.join() !== sb.batchShape.join()) {
    throw new Error(`matmul: batch dims differ for ${shapes} (only a 2-D operand broadcasts)`);
  }
  if (bias && (bias.size !== N || bias.shape.length !== 1)) throw new Error(`matmul: bias [${bias.shape}] must be [${N}] for ${shapes}`);
  const batchShape = aShared ? sb.batchShape : sa.batchShape;
  const batch = batchShape.reduce((x, y) => x * y, 1);
  const strideA = aShared ? 0 : M * K, strideB = bShared ? 0 : K * N, strideG = M * N;
  const out = Tensor.empty([...batchShape, M, N], { device: a.device });
  matmulRaw(a, b, out, { M, N, K, batch, transA, transB, batchStrideA: strideA, batchStrideB: strideB, bias, variant });

  return record(out, 'matmul', [a, b, bias], (g) => {
    let ga: Tensor | null = null, gb: Tensor | null = null;
    if (a.requiresGrad) {
      ga = Tensor.empty(a.shape, { device: a.device });
      // op(A)' = G op(B)^T; when a holds A^T its gradient is op(B) G^T. A shared A sums over the batch.
      const gradA = (n: number, offG: number, offB: number, accumulate: boolean) => {
        const common = { batch: n, batchStrideC: M * K, accumulate, variant };
        if (!transA) {
          matmulRaw(g, b, ga!, { ...common, M, N: K, K: N, transB: !transB, batchStrideA: strideG, batchStrideB: strideB, offsetA: offG, offsetB: offB });
        } else {
          matmulRaw(b, g, ga!, { ...common, M: K, N: M, K: N, transA: transB, transB: true, batchStrideA: strideB, batchStrideB: strideG, offsetA: offB, offsetB: offG });
        }
      };
      if (!aShared) gradA(batch, 0, 0, false);
      else for (let i = 0; i < batch; i++) gradA(1, i * strideG, i * strideB, i > 0);
    }
    if (b.requiresGrad) {
      gb = Tensor.empty(b.shape, { device: b.device });
      // op(B)' = op(A)^T G; when b holds B^T its gradient is G^T op(A). A shared B sums over the batch.
      const gradB = (n: number, rows: number, offG: number, offA: number, accumulate: boolean) => {
        const common = { batch: n, batchStrideC: K * N, accumulate, variant };
        if (!transB) {
          matmulRaw(a, g, gb!, { ...common, M: K, N, K: rows, transA: !transA, batchStrideA: strideA, batchStrideB: strideG, offsetA: offA, offsetB: offG });
        } else {
          matmulRaw(g, a, gb!, { ...common, M: N, N: K, K: rows, transA: true, transB: transA, batchStrideA: strideG, batchStrideB: strideA, offsetA: offG, offsetB: offA });
        }
      };
      if (!bShared) gradB(batch, M, 0, 0, false);
      else if (!transA && !aShared) gradB(1, batch * M, 0, 0, false); // the batch stacks into rows: one product sums it
      else for (let i = 0; i < batch; i++) gradB(1, M, i * strideG, i * strideA, i > 0);
    }
    const gBias = bias?.requiresGrad ? sumRowsRaw(g, N) : null;
    return [ga, gb, gBias];
  });
}

/** rows, in and out features of linear's x W^T for x of shape `xShape`, checked (`op` names the caller in errors). */
export function linearShape(op: string, xShape: readonly number[], weight: Tensor, bias: Tensor | null): { rows: number; inF: number; outF: number } {
  const inF = xShape[xShape.length - 1];
  if (weight.shape.length !== 2 || xShape.length < 1 || weight.shape[1] !== inF) {
    throw new Error(`${op}: input [${xShape}] does not fit weight [${weight.shape}] (weight must be [out, ${inF}])`);
  }
  const outF = weight.shape[0];
  if (bias && (bias.shape.length !== 1 || bias.size !== outF)) {
    throw new Error(`${op}: bias [${bias.shape}] does not fit weight [${weight.shape}] (bias must be [${outF}])`);
  }
  return { rows: xShape.slice(0, -1).reduce((p, d) => p * d, 1), inF, outF };
}

/**
 * The backward of y = x W^T (+ b) for the inputs that need a gradient: dx = dz W, dW = dz^T x (over all
 * leading dims) and db = column sums of dz, formed beside dW (matmulRaw's sumA) where both are needed.
 */
export function linearBackwardRaw(
  x: Tensor, weight: Tensor, bias: Tensor | null, dz: Tensor, rows: number, inF: number, outF: number,
  pendingDx: Tensor | null = null,
): [Tensor | null, Tensor | null, Tensor | null] {
  let dx: Tensor | null = null, dW: Tensor | null = null;
  if (x.requiresGrad) {
    dx = Tensor.empty(x.shape, { device: x.device });
    // x's gradient so far (another consumer's, e.g. q of k and v) added in the product's epilogue
    matmulRaw(dz, weight, dx, { M: rows, N: inF, K: outF, residual: pendingDx });
  }
  const db = bias?.requiresGrad ? Tensor.empty([outF], { device: bias.device }) : null;
  if (weight.requiresGrad) {
    dW = Tensor.empty(weight.shape, { device: weight.device });
    matmulRaw(dz, x, dW, { M: outF, N: inF, K: rows, transA: true, sumA: db });
  } else if (db) {
    sumRowsRaw(dz, outF, 1, db);
  }
  return [dx, dW, db];
}

/**
 * torch nn.Linear: x [..., in], weight [out, in], bias [out] -> x W^T + b with shape [..., out].
 * Recorded: dx = dy W (plus x's pending gradient, in the epilogue), dW = dy^T x (over all leading dims),
 * db = column sums of dy.
 */
export function linear(x: Tensor, weight: Tensor, bias: Tensor | null = null): Tensor {
  const { rows, inF, outF } = linearShape('linear', x.shape, weight, bias);
  const y = Tensor.empty([...x.shape.slice(0, -1), outF], { device: x.device });
  matmulRaw(x, weight, y, { M: rows, N: outF, K: inF, transB: true, bias });
  return record(y, 'linear', [x, weight, bias], (dy, pending) => linearBackwardRaw(x, weight, bias, dy, rows, inF, outF, pending?.[0]), [], [0]);
}
