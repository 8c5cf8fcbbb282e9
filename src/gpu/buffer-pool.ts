// Reuses GPU buffers by size class. A released buffer may still be referenced by commands that are
// recorded but not yet submitted, so it only becomes reusable after the next submit (queue order
// then guarantees the old commands run before any new use).

export interface PoolStats {
  /** bytes of buffers handed out and not yet released (size-class bytes) */
  bytesInUse: number;
  /** bytes of all buffers the pool owns (in use + free + pending) */
  bytesAllocated: number;
  /** highest bytesInUse seen */
  peakBytesInUse: number;
  /** highest bytesAllocated seen */
  peakBytesAllocated: number;
  buffersInUse: number;
  buffersAllocated: number;
}

/** Size classes: multiples of 256 B up to 4 KiB, then 8 steps per power of two (waste < 12.5 %). */
export function sizeClass(bytes: number): number {
  const b = Math.max(256, Math.ceil(bytes / 256) * 256);
  if (b <= 4096) return b;
  const step = 2 ** (Math.floor(Math.log2(b)) - 3);
  return Math.ceil(b / step) * step;
}

export class BufferPool {
  private free = new Map<number, GPUBuffer[]>();
  private pending: GPUBuffer[] = [];
  /** bytes released since the last submit (not reusable until then) */
  pendingBytes = 0;
  private sizes = new WeakMap<GPUBuffer, number>();
  private stats: PoolStats = {
    bytesInUse: 0, bytesAllocated: 0, peakBytesInUse: 0, peakBytesAllocated: 0,
    buffersInUse: 0, buffersAllocated: 0,
  };

  constructor(
    private readonly device: GPUDevice,
    private readonly usage: GPUBufferUsageFlags,
    private readonly label: string,
  ) {}

  acquire(bytes: number): GPUBuffer {
    const size = sizeClass(bytes);
    let buffer = this.free.get(size)?.pop();
    if (!buffer) {
      buffer = this.device.createBuffer({ size, usage: this.usage, label: `${this.label}:${size}` });
      this.sizes.set(buffer, size);
      this.stats.bytesAllocated += size;
      this.stats.buffersAllocated++;
      this.stats.peakBytesAllocated = Math.max(this.stats.peakBytesAllocated, this.stats.bytesAllocated);
    }
    this.stats.bytesInUse += size;
    this.stats.buffersInUse++;
    this.stats.peakBytesInUse = Math.max(this.stats.peakBytesInUse, this.stats.bytesInUse);
    return buffer;
  }

  /** Returns a buffer; it becomes reusable after the next `onSubmit()`. */
  release(buffer: GPUBuffer): void {
    const size = this.sizes.get(buffer);
    if (size === undefined) throw new Error(`BufferPool(${this.label}): releasing a buffer it does not own`);
    this.stats.bytesInUse -= size;
    this.stats.buffersInUse--;
    this.pending.push(buffer);
    this.pendingBytes += size;
  }

  /** Called by the device after each queue submit. */
  onSubmit(): void {
    for (const buffer of this.pending) {
      const size = this.sizes.get(buffer)!;
      let list = this.free.get(size);
      if (!list) this.free.set(size, (list = []));
      list.push(buffer);
    }
    this.pending.length = 0;
    this.pendingBytes = 0;
  }

  /** Destroys free buffers (not those in use). */
  trim(): void {
    for (const list of this.free.values()) {
      for (const buffer of list) {
        this.stats.bytesAllocated -= this.sizes.get(buffer)!;
        this.stats.buffersAllocated--;
        buffer.destroy();
      }
    }
    this.free.clear();
  }

  getStats(): PoolStats {
    return { ...this.stats };
  }

  resetPeak(): void {
    this.stats.peakBytesInUse = this.stats.bytesInUse;
    this.stats.peakBytesAllocated = this.stats.bytesAllocated;
  }
}
