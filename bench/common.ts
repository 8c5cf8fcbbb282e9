// Bench plumbing: timing (GPU timestamps when the adapter has them, else submit-and-wait wall
// clock), medians, ceiling probes, flags and the --json line.
import { readFileSync } from 'node:fs';
import '../src/node.ts'; // Node's platform (Dawn) and autotune cache
import { Device, type KernelTiming, type Shader } from '../src/gpu/device.ts';
import { Tensor } from '../src/tensor.ts';
import { kernelVariants } from '../src/ops/variants.ts';

/** The bench-only probe kernels (FMA and copy ceilings). */
const probe: Shader = { name: 'probe', code: readFileSync(new URL('./probe.wgsl', import.meta.url), 'utf8') };

export function flag(args: string[], name: string): string | undefined {
  const i = args.findIndex((a) => a === `--${name}` || a.startsWith(`--${name}=`));
  if (i < 0) return undefined;
  const a = args[i];
  return a.includes('=') ? a.slice(a.indexOf('=') + 1) : (args[i + 1] && !args[i + 1].startsWith('--') ? args[i + 1] : 'true');
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export interface Timing {
  /** median time of one call */
  ms: number;
  /** fastest sample */
  best: number;
  source: 'gpu-timestamps' | 'wall-clock' | 'wall-clock (texture copies)';
  /** timed samples taken (after warm-up) */
  reps: number;
  /** calls per sample (wall clock: many dispatches per submit-and-wait) */
  batch: number;
  /** GPU ms per call for each shader:entry (timestamps only), largest first */
  entries: KernelTiming[];
  /**
   * CPU time of this process / wall time over the timed samples: on a CPU adapter (lavapipe's threads
   * are ours) how many cores the kernel actually got, which tells how busy a shared machine was
   */
  cores: number;
}

export interface TimeOptions {
  /** untimed calls first (the first one compiles pipelines); default 2 */
  warmup?: number;
  /** fixed number of timed samples; default: chosen from `targetMs` */
  reps?: number;
  /** calls per wall-clock sample; default: enough for about 20 ms */
  batch?: number;
  /** use GPU timestamps when the adapter has them (default true) */
  timestamps?: boolean;
  /** with `reps` unset: take samples until about this much time is spent (default 1000 ms) */
  targetMs?: number;
  minReps?: number;
  maxReps?: number;
}

/**
 * Median time of one call of `run` (which records dispatches). With timestamps: the sum of the
 * per-dispatch GPU times of one call; otherwise wall clock of `batch` calls per submit-and-wait. A call
 * that records buffer-to-texture copies (the texture matmul) is timed by wall clock too, since timestamps
 * cover only compute passes; one more call with timestamps then gives the per-kernel `entries`.
 */
export async function timeKernel(device: Device, run: () => void, opts: TimeOptions = {}): Promise<Timing> {
  const warmup = Math.max(1, opts.warmup ?? 2);
  let estimate = Infinity;
  const copies0 = device.copyCount;
  for (let i = 0; i < warmup; i++) {
    const t0 = performance.now();
    run();
    await device.sync();
    estimate = performance.now() - t0; // the last warm-up run (pipelines compiled by now)
  }
  const minReps = opts.minReps ?? 3, maxReps = opts.maxReps ?? 25;
  const copies = device.copyCount > copies0;
  const useGpu = (opts.timestamps ?? true) && device.canTime && !copies;
  const batch = useGpu ? 1 : (opts.batch ?? Math.min(100, Math.max(1, Math.ceil(20 / Math.max(estimate, 1e-3)))));
  const reps = opts.reps
    ?? Math.min(maxReps, Math.max(minReps, Math.round((opts.targetMs ?? 1000) / Math.max(estimate * batch, 1e-3))));
  const samples: number[] = [];
  const perEntry = new Map<string, number>();
  const cpu0 = process.cpuUsage();
  const wall0 = performance.now();
  if (useGpu) {
    device.setProfiling(true);
    await device.takeTimings();
    for (let r = 0; r < reps; r++) {
      run();
      const t = await device.takeTimings();
      samples.push(t.reduce((a, k) => a + k.ms, 0));
      for (const k of t) perEntry.set(k.name, (perEntry.get(k.name) ?? 0) + k.ms);
    }
    device.setProfiling(false);
  } else {
    for (let r = 0; r < reps; r++) {
      const t0 = performance.now();
      for (let b = 0; b < batch; b++) run();
      await device.sync();
      samples.push((performance.now() - t0) / batch);
    }
  }
  const cpu = process.cpuUsage(cpu0);
  const cores = (cpu.user + cpu.system) / 1000 / (performance.now() - wall0);
  if (copies && device.canTime) {
    device.setProfiling(true);
    await device.takeTimings();
    run();
    for (const k of await device.takeTimings()) perEntry.set(k.name, k.ms * reps); // (divided by reps below)
    device.setProfiling(false);
  }
  const entries = [...perEntry].map(([name, ms]) => ({ name, ms: ms / reps, count: 1 })).sort((a, b) => b.ms - a.ms);
  const source = useGpu ? 'gpu-timestamps' : copies ? 'wall-clock (texture copies)' : 'wall-clock';
  return { ms: median(samples), best: Math.min(...samples), source, reps, batch, entries, cores };
}

export interface Ceilings { gflops: number; gbps: number; source: Timing['source'] }

/** This adapter's FMA ceiling (GFLOP/s) and copy bandwidth (GB/s), measured now. */
export async function measureCeilings(device: Device): Promise<Ceilings> {
  const invocations = device.isCPU ? 64 * 64 : 64 * 4096;
  const iters = device.isCPU ? 4096 : 65536;
  const sink = Tensor.empty([invocations * 4]);
  const fma = await timeKernel(device, () => device.dispatch({
    shader: probe, entry: 'fma_probe', uniforms: { n: iters, seed: 1 }, bindings: [sink.binding], workgroups: device.grid(invocations, 64),
  }), { reps: 5 });
  const n = (device.isCPU ? 8 : 64) * 1024 * 1024 / 4; // vec4 elements (32 or 256 MiB of f32)
  const src = Tensor.empty([n * 4]), dst = Tensor.empty([n * 4]);
  const copy = await timeKernel(device, () => device.dispatch({
    shader: probe, entry: 'copy_probe', uniforms: { n }, bindings: [src.binding, dst.binding], workgroups: device.grid(n, 64),
  }), { reps: 5 });
  sink.dispose(); src.dispose(); dst.dispose();
  // a ceiling is what the adapter can reach: the best sample, not the median
  return { gflops: (invocations * iters * 64) / fma.best / 1e6, gbps: (2 * n * 16) / copy.best / 1e6, source: fma.source };
}

/** A numeric flag (`--name 8` or `--name=8`), or the default. */
export function numFlag(args: string[], name: string, dflt: number): number {
  const v = flag(args, name);
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new Error(`--${name} needs a number, got "${v}"`);
  return n;
}

/** What the JSON lines say about the adapter. */
export function adapterInfo(device: Device): { description: string; isCPU: boolean; timestamps: boolean; matmulVariant: string } {
  return { description: device.description, isCPU: device.isCPU, timestamps: device.canTime, matmulVariant: kernelVariants(device).matmul };
}

/** Fixed-width table printing. */
export function table(header: string[], rows: string[][], leftColumns = 1): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const last = header.length - 1;
  const left = (i: number) => i < leftColumns || i === last; // the last column is free text
  const line = (r: string[]) => r.map((c, i) => (left(i) ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ').trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

export const fmt = (x: number | null | undefined, digits = 1): string =>
  x == null || !Number.isFinite(x) ? '-' : x.toFixed(digits);

export const mib = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(1)} MiB`;

export interface VitShape { image: number; patch: number; hidden: number; layers: number; mlp: number; labels: number; channels?: number }

/** Parameter count of ViTForImageClassification (no pooler): for napkin maths without a model. */
export function vitParamCount(c: VitShape): number {
  const C = c.channels ?? 3, D = c.hidden, M = c.mlp, T = (c.image / c.patch) ** 2;
  const embeddings = C * c.patch ** 2 * D + D + D + (T + 1) * D; // projection, bias, [CLS], positions
  const layer = 4 * (D * D + D) + (D * M + M) + (M * D + D) + 4 * D; // q k v out, MLP, 2 layernorms
  return embeddings + c.layers * layer + 2 * D + D * c.labels + c.labels;
}

/** What bench:vit compares after step 2 and after the last step: equal unless something leaks. */
export interface VitMemory { bytesInUse: number; bytesAllocated: number; buffersAllocated: number; textureBytes: number; liveTensors: number }

/**
 * Why a bench:vit run fails (it then exits 1, as bench:kernels on a failed check): a non-finite
 * loss at any training step (`losses[i]` is step i + 1), or memory after the last step unlike after step 2.
 */
export function vitRunFailures(losses: readonly number[], afterStep2: VitMemory, afterLast: VitMemory): string[] {
  const failures: string[] = [];
  const bad = losses.findIndex((l) => !Number.isFinite(l));
  if (bad >= 0) failures.push(`training step ${bad + 1}: loss is ${losses[bad]}`);
  const keys = (Object.keys(afterStep2) as (keyof VitMemory)[]).filter((k) => afterStep2[k] !== afterLast[k]);
  if (keys.length) {
    failures.push(`memory after the last step differs from after step 2: ${keys.map((k) => `${k} ${afterStep2[k]} -> ${afterLast[k]}`).join(', ')}`);
  }
  return failures;
}
