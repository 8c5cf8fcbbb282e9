// Picks the matmul variant, then the attention variant, for this adapter by timing the candidates on a
// few representative shapes, once: each choice is cached (on Node in ~/.cache/vitcatsvdogs/autotune.json,
// registered by the Node entry) keyed by the adapter, its enabled features and a fingerprint of the
// shaders involved, so later runs start at once. `await autotune(device)` runs it;
// VITCATS_MATMUL_VARIANT skips it, VITCATS_ATTENTION_VARIANT the attention part.
import type { Device } from '../gpu/device.ts';
import { Tensor, tidy } from '../tensor.ts';
import { matmulRaw } from './matmul.ts';
import { attention, attentionKernel } from './attention.ts';
import {
  ATTENTION_VARIANTS, MATMUL_VARIANTS, envAttentionVariant, setKernelVariants, variantForcedByEnv, kernelVariants, type AttentionVariant, type KernelVariant,
} from './variants.ts';
import { wgsl } from '../gpu/wgsl.generated.ts';

export interface AutotuneEntry {
  matmulVariant: KernelVariant;
  /** summed best time (ms) of each variant over the shapes */
  ms: Partial<Record<KernelVariant, number>>;
  /** variants abandoned part-way (3x behind the best): their `ms` covers fewer shapes */
  abandoned?: KernelVariant[];
  shapes: string[];
  measuredAt: string;
}

export interface AutotuneResult extends AutotuneEntry {
  source: 'cache' | 'measured';
  key: string;
  /** the attention choice made after the matmul one (autotune() only) */
  attention?: AttentionAutotuneResult;
}

export interface AttentionAutotuneEntry {
  /** the choice up to LONG_SEQUENCE tokens (measured at 197) */
  attentionVariant: AttentionVariant;
  /** the choice past LONG_SEQUENCE tokens (measured at 577) */
  attentionLongVariant: AttentionVariant;
  /** best time (ms) of forward + backward of each candidate at the short shape */
  ms: Partial<Record<AttentionVariant, number>>;
  /** the same at the long shape */
  msLong: Partial<Record<AttentionVariant, number>>;
  /** candidates abandoned part-way (3x behind the best): their `ms` covers fewer shapes */
  abandoned?: AttentionVariant[];
  shapes: string[];
  measuredAt: string;
}

export interface AttentionAutotuneResult extends AttentionAutotuneEntry {
  source: 'cache' | 'measured';
  key: string;
}

/** Where autotune results persist; the Node one is in autotune-cache-node.ts. */
export interface AutotuneCache {
  read(key: string): AutotuneEntry | AttentionAutotuneEntry | null;
  write(key: string, entry: AutotuneEntry | AttentionAutotuneEntry): void;
}

let defaultCache: AutotuneCache | null = null;

/** The cache autotune uses by default (the Node entry sets the disk cache; none elsewhere). */
export function setDefaultAutotuneCache(cache: AutotuneCache | null): void {
  defaultCache = cache;
}

/** FNV-1a of some shaders: editing a kernel re-tunes. */
function kernelFingerprint(shaders = [wgsl.matmul, wgsl.matmul_texture]): string {
  let h = 0x811c9dc5;
  for (const s of shaders) {
    for (let i = 0; i < s.code.length; i++) h = Math.imul(h ^ s.code.charCodeAt(i), 0x01000193);
  }
  return (h >>> 0).toString(16).padStart(8, '0');
}

/**
 * The cache key: adapter, enabled features (the register variant runs another shader where `subgroups`
 * is enabled) and the kernels' fingerprint.
 */
export function autotuneKey(device: Device): string {
  return `${device.description} | ${[...device.features].sort().join(',')} | ${kernelFingerprint()}`;
}

export interface AutotuneOptions {
  /** null: no cache; default: the one set by setDefaultAutotuneCache (the Node disk cache) */
  cache?: AutotuneCache | null;
  /** measure even when the cache has an entry (the new result replaces it) */
  refresh?: boolean;
}

interface Shape { M: number; N: number; K: number; transA: boolean; transB: boolean }

/**
 * Linear-layer shapes (forward Y = X W^T, backward dW = dY^T X). Small on a CPU rasteriser so the
 * whole run stays near a second; ViT-sized on a GPU where they take well under a millisecond.
 */
function shapesFor(device: Device): Shape[] {
  return device.isCPU
    ? [
      { M: 256, N: 768, K: 192, transA: false, transB: true },
      { M: 256, N: 192, K: 768, transA: false, transB: true },
      { M: 768, N: 192, K: 256, transA: true, transB: false },
    ]
    : [
      { M: 1576, N: 3072, K: 768, transA: false, transB: true },
      { M: 1576, N: 768, K: 3072, transA: false, transB: true },
      { M: 3072, N: 768, K: 1576, transA: true, transB: false },
    ];
}

const shapeName = (s: Shape) => `${s.M}x${s.N}x${s.K}${s.transA ? ' tA' : ''}${s.transB ? ' tB' : ''}`;

const results = new WeakMap<Device, AutotuneResult>();

/** The autotune result a device was created with, if it ran. */
export function lastAutotune(device: Device): AutotuneResult | undefined {
  return results.get(device);
}

/** Best-of-`reps` wall time (ms) of `calls` back-to-back dispatches of one matmul, per call. */
async function timeMatmul(device: Device, s: Shape, variant: KernelVariant, calls: number, reps: number): Promise<number> {
  const [aRows, aCols] = s.transA ? [s.K, s.M] : [s.M, s.K];
  const [bRows, bCols] = s.transB ? [s.N, s.K] : [s.K, s.N];
  // Values do not matter for timing: uninitialised pool buffers are fine (and cost no upload).
  const a = Tensor.empty([aRows, aCols], { device });
  const b = Tensor.empty([bRows, bCols], { device });
  const c = Tensor.empty([s.M, s.N], { device });
  const run = () => matmulRaw(a, b, c, { M: s.M, N: s.N, K: s.K, transA: s.transA, transB: s.transB, variant });
  run(); // warm-up: pipeline compilation
  await device.sync();
  let best = Infinity;
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    for (let i = 0; i < calls; i++) run();
    await device.sync();
    best = Math.min(best, (performance.now() - t0) / calls);
  }
  a.dispose();
  b.dispose();
  c.dispose();
  return best;
}

/** Times each variant on each shape (best of a few runs, which resists other load on the machine). */
export async function measureMatmulVariants(device: Device): Promise<AutotuneEntry> {
  const shapes = shapesFor(device);
  const calls = device.isCPU ? 1 : 10;
  const reps = 3;
  const ms: Partial<Record<KernelVariant, number>> = {};
  const abandoned: KernelVariant[] = [];
  await tidy(async () => {
    for (const variant of MATMUL_VARIANTS) {
      let total = 0;
      for (const s of shapes) {
        total += await timeMatmul(device, s, variant, calls, reps);
        // A variant already 3x behind the best total cannot win: skip its remaining shapes.
        if (total > 3 * Math.min(...Object.values(ms))) { abandoned.push(variant); break; }
      }
      ms[variant] = total;
    }
  });
  const score = (v: KernelVariant) => (abandoned.includes(v) ? Infinity : ms[v] ?? Infinity);
  const matmulVariant = MATMUL_VARIANTS.reduce((a, b) => (score(b) < score(a) ? b : a));
  return { matmulVariant, ms, abandoned, shapes: shapes.map(shapeName), measuredAt: new Date().toISOString() };
}

/**
 * Chooses the kernel variants for this device: from the cache, else measured now (about a second on
 * lavapipe), and sets them (kernelVariants). VITCATS_MATMUL_VARIANT, where set, wins: nothing is measured.
 */
export async function autotune(device: Device, opts: AutotuneOptions = {}): Promise<AutotuneResult | null> {
  if (variantForcedByEnv()) {
    kernelVariants(device);
    return null;
  }
  const result = await autotuneMatmul(device, opts);
  // after the matmul choice (the unfused attention path runs on it); VITCATS_ATTENTION_VARIANT skips it
  if (!envAttentionVariant()) result.attention = await autotuneAttention(device, opts);
  return result;
}

/**
 * The cached entry under `key` where `usable` accepts it (and no refresh is asked), else a fresh
 * measurement, written back to the cache.
 */
async function cachedOrMeasured<E extends AutotuneEntry | AttentionAutotuneEntry>(
  key: string, opts: AutotuneOptions, usable: (cached: AutotuneEntry | AttentionAutotuneEntry) => cached is E, measure: () => Promise<E>,
): Promise<E & { source: 'cache' | 'measured'; key: string }> {
  const cache = opts.cache === undefined ? defaultCache : opts.cache;
  const cached = opts.refresh ? null : cache?.read(key);
  if (cached && usable(cached)) return { ...cached, source: 'cache', key };
  const entry = await measure();
  try {
    cache?.write(key, entry);
  } catch {
    /* a read-only home directory only costs the next run another autotune */
  }
  return { ...entry, source: 'measured', key };
}

/** The matmul variant for this device: from the cache, else measured now; sets it. */
export async function autotuneMatmul(device: Device, opts: AutotuneOptions = {}): Promise<AutotuneResult> {
  const result = await cachedOrMeasured(autotuneKey(device), opts,
    (c): c is AutotuneEntry => 'matmulVariant' in c && MATMUL_VARIANTS.includes(c.matmulVariant),
    () => measureMatmulVariants(device));
  results.set(device, result);
  setKernelVariants(device, { matmul: result.matmulVariant });
  return result;
}

// ---- attention ----------------------------------------------------------------------------------

interface AttentionShape { batch: number; seq: number; heads: number; headDim: number }

/**
 * ViT attention (head dim 64) at both sequence classes: 197 tokens (224 px) and 577 (384 px). ViT-B's 12
 * heads on a GPU. On a CPU rasteriser the number of (image, head) pairs decides the ranking: at 2 or 6
 * pairs lavapipe preferred today's path, while a ViT-Ti step at batch 8 (24 pairs) ran faster fused
 * (1.17 against 1.01-1.15 img/s training, 3.6-3.9 against 3.2-3.4 inference); so 24 pairs at 197
 * tokens (0.1 s a run), and 6 at 577 to keep the run short (about 3 s in all on a 2-core machine).
 */
function attentionShapesFor(device: Device): AttentionShape[] {
  if (!device.isCPU) return [{ batch: 1, seq: 197, heads: 12, headDim: 64 }, { batch: 1, seq: 577, heads: 12, headDim: 64 }];
  return [{ batch: 4, seq: 197, heads: 6, headDim: 64 }, { batch: 1, seq: 577, heads: 6, headDim: 64 }];
}

/**
 * The candidates on this adapter: the texture kernels are for CPU rasterisers, the tiles for GPUs; a
 * fused kernel the adapter cannot run at the measured shapes (the texture one without 8-lane subgroups,
 * e.g. SwiftShader's 4) would only time today's path under another name, so it is left out.
 */
export function attentionCandidates(device: Device): AttentionVariant[] {
  return ATTENTION_VARIANTS.filter((v) => v === 'unfused' || (v === (device.isCPU ? 'fused-texture' : 'fused-tiles')
    && attentionShapesFor(device).every((s) => attentionKernel(device, s, v) === v)));
}

const attentionShapeName = (s: AttentionShape) => `B${s.batch} S${s.seq} H${s.heads} hd${s.headDim}`;

/** The cache key of the attention choice: adapter, features, the attention and matmul shaders, and the shapes timed. */
export function attentionAutotuneKey(device: Device): string {
  const shaders = [wgsl.attention, wgsl.attention_fused, wgsl.attention_fused_texture, wgsl.matmul, wgsl.matmul_texture];
  const shapes = attentionShapesFor(device).map(attentionShapeName).join(', ');
  return `attention | ${device.description} | ${[...device.features].sort().join(',')} | ${kernelFingerprint(shaders)} | ${shapes}`;
}

/** Wall time (ms) of forward + backward of one attention with the variant set (`warmUp`: one run first, compiling pipelines). */
async function timeAttention(device: Device, s: AttentionShape, warmUp: boolean): Promise<number> {
  const shape = [s.batch, s.seq, s.heads * s.headDim];
  return tidy(async () => {
    // values matter little for timing, but uninitialised memory could hold NaNs: zeros cost one upload
    const zeros = new Float32Array(shape[0] * shape[1] * shape[2]);
    const [q, k, v] = [0, 1, 2].map(() => Tensor.fromArray(zeros, shape, { device, requiresGrad: true }));
    const dContext = Tensor.fromArray(zeros, shape, { device });
    const run = async () => {
      const { context } = attention(q, k, v, { heads: s.heads });
      context.backward(dContext);
      for (const t of [q, k, v]) { t.grad?.dispose(); t.grad = null; }
      context.dispose();
      await device.sync();
    };
    if (warmUp) await run();
    const t0 = performance.now();
    await run();
    return performance.now() - t0;
  });
}

/** today's attention is kept only when at least 10 % faster than the fused kernel */
export const UNFUSED_HANDICAP = 1.1;

/** timed samples per variant and shape, taken in turns (A, B, A, B, ...) so a load burst hits both */
const ATTENTION_ROUNDS = 3;

/** Times each candidate's forward + backward at the short and the long shape (best of a few runs); picks per length. */
export async function measureAttentionVariants(device: Device, shapes = attentionShapesFor(device)): Promise<AttentionAutotuneEntry> {
  const candidates = attentionCandidates(device);
  const before = kernelVariants(device);
  const [short, long] = shapes;
  const timed: Partial<Record<AttentionVariant, number>>[] = [{}, {}];
  const abandoned: AttentionVariant[] = [];
  try {
    for (let round = 0; round < ATTENTION_ROUNDS; round++) {
      for (const variant of candidates.filter((v) => !abandoned.includes(v))) {
        setKernelVariants(device, { attention: variant, attentionLong: variant });
        for (const [i, s] of [short, long].entries()) {
          timed[i][variant] = Math.min(timed[i][variant] ?? Infinity, await timeAttention(device, s, round === 0));
          // 3x behind the best at the short shape: it cannot win the long one either in time worth spending
          if (i === 0 && timed[0][variant]! > 3 * Math.min(...Object.values(timed[0]))) { abandoned.push(variant); break; }
        }
      }
    }
  } finally {
    setKernelVariants(device, before);
  }
  // the fused kernel keeps nothing of size S²: today's path must be clearly faster to be kept (run-to-run
  // spread on a loaded CPU adapter is about 10 %, which flipped near-ties between runs)
  const cost = (ms: Partial<Record<AttentionVariant, number>>, v: AttentionVariant) =>
    (ms[v] ?? Infinity) * (v === 'unfused' ? UNFUSED_HANDICAP : 1);
  const pick = (ms: Partial<Record<AttentionVariant, number>>) =>
    candidates.reduce((a, b) => (cost(ms, b) < cost(ms, a) ? b : a));
  return {
    attentionVariant: pick(timed[0]), attentionLongVariant: pick(timed[1]), ms: timed[0], msLong: timed[1], abandoned,
    shapes: shapes.map(attentionShapeName), measuredAt: new Date().toISOString(),
  };
}

const attentionResults = new WeakMap<Device, AttentionAutotuneResult>();

/** The attention autotune result of a device, if it ran. */
export function lastAttentionAutotune(device: Device): AttentionAutotuneResult | undefined {
  return attentionResults.get(device);
}

/** The attention variants for this device (short and long sequences): from the cache, else measured now; sets them. */
export async function autotuneAttention(device: Device, opts: AutotuneOptions = {}): Promise<AttentionAutotuneResult> {
  const candidates = attentionCandidates(device);
  const result = await cachedOrMeasured(attentionAutotuneKey(device), opts,
    // (an entry of before the per-length choice has no attentionLongVariant: measured again)
    (c): c is AttentionAutotuneEntry => 'attentionLongVariant' in c && candidates.includes(c.attentionVariant) && candidates.includes(c.attentionLongVariant),
    () => measureAttentionVariants(device));
  attentionResults.set(device, result);
  setKernelVariants(device, { attention: result.attentionVariant, attentionLong: result.attentionLongVariant });
  return result;
}
