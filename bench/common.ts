// Bench plumbing: timing (GPU timestamps when the adapter has them, else submit-and-wait wall
// clock), medians, ceiling probes, flags and the --json line.
import { Device } from '../src/gpu/device.ts';
import { Tensor } from '../src/tensor.ts';

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

export interface Timing { ms: number; source: 'gpu-timestamps' | 'wall-clock' }

/**
 * Median time of one call of `run` (which records dispatches). With timestamps: the sum of the
 * per-dispatch GPU times of one call; otherwise wall clock of `batch` calls per submit-and-wait.
 */
export async function timeKernel(device: Device, run: () => void, opts: { warmup?: number; reps?: number; batch?: number; timestamps?: boolean } = {}): Promise<Timing> {
  const warmup = opts.warmup ?? 2, reps = opts.reps ?? 5, batch = opts.batch ?? 1;
  for (let i = 0; i < warmup; i++) run();
  await device.sync();
  const samples: number[] = [];
  const useGpu = (opts.timestamps ?? true) && device.canTime;
  if (useGpu) {
    device.setProfiling(true);
    await device.takeTimings();
    for (let r = 0; r < reps; r++) {
      run();
      const t = await device.takeTimings();
      samples.push(t.reduce((a, k) => a + k.ms, 0));
    }
    device.setProfiling(false);
    return { ms: median(samples), source: 'gpu-timestamps' };
  }
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    for (let b = 0; b < batch; b++) run();
    await device.sync();
    samples.push((performance.now() - t0) / batch);
  }
  return { ms: median(samples), source: 'wall-clock' };
}

/** This adapter's FMA ceiling (GFLOP/s) and copy bandwidth (GB/s), measured now. */
export async function measureCeilings(device: Device): Promise<{ gflops: number; gbps: number }> {
  const invocations = device.isCPU ? 64 * 64 : 64 * 4096;
  const iters = device.isCPU ? 4096 : 65536;
  const sink = Tensor.empty([invocations * 4]);
  const fma = await timeKernel(device, () => device.dispatch({
    shader: 'probe', entry: 'fma_probe', u: [iters, 0], f: [1, 0], bindings: [sink.binding], workgroups: device.grid(invocations, 64),
  }), { reps: 3, timestamps: false });
  const n = (device.isCPU ? 8 : 64) * 1024 * 1024 / 4; // vec4 elements (32 or 256 MiB of f32)
  const src = Tensor.empty([n * 4]), dst = Tensor.empty([n * 4]);
  const copy = await timeKernel(device, () => device.dispatch({
    shader: 'probe', entry: 'copy_probe', u: [n, 0], f: [0, 0], bindings: [src.binding, dst.binding], workgroups: device.grid(n, 64),
  }), { reps: 3, timestamps: false });
  sink.dispose(); src.dispose(); dst.dispose();
  return { gflops: (invocations * iters * 64) / fma.ms / 1e6, gbps: (2 * n * 16) / copy.ms / 1e6 };
}
