// Per-dispatch GPU timestamps: while on, Device gives each dispatch its own compute pass with
// timestampWrites, and each submit resolves and reads back the pass times, summed per kernel label.

export interface KernelTiming { name: string; ms: number; count: number }

const QUERY_COUNT = 4096;

export class Profiler {
  private querySet: GPUQuerySet | null = null;
  private labels: string[] = [];
  private timings = new Map<string, KernelTiming>();

  constructor(private readonly gpu: GPUDevice) {}

  /** Whether another pass fits in the query set before the next submit. */
  get full(): boolean {
    return (this.labels.length + 1) * 2 > QUERY_COUNT;
  }

  /** timestampWrites for the next pass, labelled `label`. */
  passWrites(label: string): GPUComputePassTimestampWrites {
    this.querySet ??= this.gpu.createQuerySet({ type: 'timestamp', count: QUERY_COUNT });
    const i = this.labels.length;
    this.labels.push(label);
    return { querySet: this.querySet, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 };
  }

  /**
   * Records the resolve of this submit's timestamps into `encoder`; the returned function, called after
   * the submit (a pending map would block it), reads them back into the per-kernel totals.
   */
  resolve(encoder: GPUCommandEncoder): (() => Promise<void>) | null {
    if (!this.querySet || this.labels.length === 0) return null;
    const n = this.labels.length * 2;
    const resolveBuf = this.gpu.createBuffer({ size: n * 8, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
    const readBuf = this.gpu.createBuffer({ size: n * 8, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    encoder.resolveQuerySet(this.querySet, 0, n, resolveBuf, 0);
    encoder.copyBufferToBuffer(resolveBuf, 0, readBuf, 0, n * 8);
    const labels = this.labels;
    this.labels = [];
    return async () => {
      await readBuf.mapAsync(GPUMapMode.READ);
      const t = new BigUint64Array(readBuf.getMappedRange());
      labels.forEach((name, i) => {
        const entry = this.timings.get(name) ?? { name, ms: 0, count: 0 };
        entry.ms += Math.max(0, Number(t[2 * i + 1] - t[2 * i]) / 1e6);
        entry.count++;
        this.timings.set(name, entry);
      });
      readBuf.unmap();
      readBuf.destroy();
      resolveBuf.destroy();
    };
  }

  /** The totals since the last call; clears them. */
  take(): KernelTiming[] {
    const out = [...this.timings.values()];
    this.timings.clear();
    return out;
  }

  destroy(): void {
    this.querySet?.destroy();
    this.querySet = null;
  }
}
