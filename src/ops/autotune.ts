// Picks the matmul variant for this adapter by timing both on a few representative shapes, once:
// the choice is cached (on Node in ~/.cache/vitcatsvdogs/autotune.json, registered by the Node
// entry) keyed by the adapter, its enabled features and a fingerprint of the matmul shaders, so later
// runs start at once. `await autotune(device)` runs it; VITCATS_MATMUL_VARIANT skips it.
import type { Device } from '../gpu/device.ts';
import { Tensor, tidy } from '../tensor.ts';
import { matmulRaw } from './matmul.ts';
import { MATMUL_VARIANTS, setKernelVariants, variantForcedByEnv, kernelVariants, type KernelVariant } from './variants.ts';
import { wgsl } from './wgsl.generated.ts';

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
}

/** Where autotune results persist; the Node one is in autotune-cache-node.ts. */
export interface AutotuneCache {
  read(key: string): AutotuneEntry | null;
  write(key: string, entry: AutotuneEntry): void;
}

let defaultCache: AutotuneCache | null = null;

/** The cache autotune uses by default (the Node entry sets the disk cache; none elsewhere). */
export function setDefaultAutotuneCache(cache: AutotuneCache | null): void {
  defaultCache = cache;
}

/** FNV-1a of the matmul shaders: editing a kernel re-tunes. */
function kernelFingerprint(): string {
  let h = 0x811c9dc5;
  for (const s of [wgsl.matmul, wgsl.matmul_texture, wgsl.matmul_subgroup4]) {
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
  return autotuneMatmul(device, opts);
}

/** The matmul variant for this device: from the cache, else measured now; sets it. */
export async function autotuneMatmul(device: Device, opts: AutotuneOptions = {}): Promise<AutotuneResult> {
  const cache = opts.cache === undefined ? defaultCache : opts.cache;
  const key = autotuneKey(device);
  const cached = opts.refresh ? null : cache?.read(key);
  let result: AutotuneResult;
  if (cached && MATMUL_VARIANTS.includes(cached.matmulVariant)) {
    result = { ...cached, source: 'cache', key };
  } else {
    const entry = await measureMatmulVariants(device);
    try {
      cache?.write(key, entry);
    } catch {
      /* a read-only home directory only costs the next run another autotune */
    }
    result = { ...entry, source: 'measured', key };
  }
  results.set(device, result);
  setKernelVariants(device, { matmul: result.matmulVariant });
  return result;
}
