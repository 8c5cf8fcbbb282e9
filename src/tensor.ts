// float32 (and int32 label) tensors living in pooled GPU buffers, with scope-based freeing.
import { Device } from './gpu/device.ts';
import { backward, type GradFn } from './autograd.ts';

export type DType = 'f32' | 'i32';

/** A pooled GPU buffer shared by a tensor and its reshaped views. */
class Storage {
  refs = 1;
  /**
   * An int32 tensor's values as uploaded by fromArray (no kernel writes int32 tensors): labels are
   * range-checked from them at the call, with no GPU read-back in the training step.
   */
  hostInt32: Int32Array | null = null;
  constructor(readonly device: Device, readonly buffer: GPUBuffer, readonly bytes: number) {}
  release(): void {
    if (--this.refs === 0) this.device.pool.release(this.buffer);
  }
}

// ---- scopes: every tensor made inside `tidy` is disposed at its end unless returned or kept ----
const scopes: Set<Tensor>[] = [];

function track(t: Tensor): void {
  scopes[scopes.length - 1]?.add(t);
}

/** Marks tensors as outliving every open scope (parameters, gradients, optimizer state). */
export function keep<T extends Tensor | null | undefined>(t: T): T {
  if (t) for (const s of scopes) s.delete(t);
  return t;
}

function collectTensors(value: unknown, out: Set<Tensor>, depth = 0): void {
  if (depth > 4 || value === null || typeof value !== 'object') return;
  if (value instanceof Tensor) {
    out.add(value);
    return;
  }
  if (Array.isArray(value)) for (const v of value) collectTensors(v, out, depth + 1);
  else if (value instanceof Map) for (const v of value.values()) collectTensors(v, out, depth + 1);
  else if (Object.getPrototypeOf(value) === Object.prototype) for (const v of Object.values(value)) collectTensors(v, out, depth + 1);
}

function closeScope(scope: Set<Tensor>, result: unknown): void {
  const survivors = new Set<Tensor>();
  collectTensors(result, survivors);
  const idx = scopes.lastIndexOf(scope);
  if (idx >= 0) scopes.splice(idx, 1);
  for (const t of scope) if (!survivors.has(t)) t.dispose();
  for (const t of survivors) if (!t.disposed) track(t); // hand them to the enclosing scope
}

/**
 * Runs `fn`; every tensor created inside and not part of its result (a Tensor, or arrays/plain
 * objects/Maps holding tensors) is disposed when it ends. Works with async functions too.
 */
export function tidy<T>(fn: () => T): T {
  const scope = new Set<Tensor>();
  scopes.push(scope);
  let result: T;
  try {
    result = fn();
  } catch (e) {
    closeScope(scope, undefined);
    throw e;
  }
  if (result instanceof Promise) {
    return result.then(
      (r) => (closeScope(scope, r), r),
      (e) => {
        closeScope(scope, undefined);
        throw e;
      },
    ) as T;
  }
  closeScope(scope, result);
  return result;
}

/**
 * Runs the synchronous `fn`; when it throws, disposes every tensor it created that is still alive,
 * then rethrows. When it returns nothing changes: its tensors belong to the enclosing scope, if
 * any. Models run their forward in it, so that a call failing late (bad labels) leaks nothing.
 */
export function disposeOnThrow<T>(fn: () => T): T {
  const scope = new Set<Tensor>();
  scopes.push(scope);
  let ok = false;
  try {
    const result = fn();
    ok = true;
    return result;
  } finally {
    scopes.splice(scopes.lastIndexOf(scope), 1);
    for (const t of scope) {
      if (ok) track(t);
      else t.dispose();
    }
  }
}

let liveTensors = 0;

export class Tensor {
  readonly shape: readonly number[];
  readonly size: number;
  readonly dtype: DType;
  readonly device: Device;
  /** set for tensors produced by recorded ops; null for leaves */
  gradFn: GradFn | null = null;
  requiresGrad: boolean;
  grad: Tensor | null = null;
  name: string | undefined;
  private storage: Storage | null;

  private constructor(storage: Storage, shape: readonly number[], dtype: DType, requiresGrad: boolean) {
    this.storage = storage;
    this.device = storage.device;
    this.shape = Object.freeze([...shape]);
    this.size = shape.reduce((a, b) => a * b, 1);
    this.dtype = dtype;
    this.requiresGrad = requiresGrad;
    liveTensors++;
    track(this);
  }

  static get liveCount(): number {
    return liveTensors;
  }

  /** An uninitialised tensor (kernels write it). */
  static empty(shape: readonly number[], opts: { dtype?: DType; device?: Device; requiresGrad?: boolean } = {}): Tensor {
    checkShape(shape);
    const device = opts.device ?? Device.default;
    const bytes = Math.max(4, shape.reduce((a, b) => a * b, 1) * 4);
    const storage = new Storage(device, device.pool.acquire(bytes), bytes);
    return new Tensor(storage, shape, opts.dtype ?? 'f32', opts.requiresGrad ?? false);
  }

  static fromArray(
    data: ArrayLike<number> | Float32Array | Int32Array,
    shape: readonly number[],
    opts: { dtype?: DType; device?: Device; requiresGrad?: boolean; name?: string } = {},
  ): Tensor {
    checkShape(shape);
    const n = shape.reduce((a, b) => a * b, 1);
    if (data.length !== n) {
      throw new Error(`Tensor.fromArray: ${opts.name ? `"${opts.name}": ` : ''}data has ${data.length} elements but shape [${shape}] needs ${n}`);
    }
    const dtype = opts.dtype ?? (data instanceof Int32Array ? 'i32' : 'f32');
    const t = Tensor.empty(shape, { ...opts, dtype });
    t.name = opts.name;
    const host = dtype === 'i32'
      ? Int32Array.from(data as ArrayLike<number>) // a copy: see Storage.hostInt32
      : (data instanceof Float32Array ? data : Float32Array.from(data as ArrayLike<number>));
    if (n > 0) t.device.write(t.buffer, 0, host);
    if (host instanceof Int32Array) t.storage!.hostInt32 = host;
    return t;
  }

  static zeros(shape: readonly number[], opts: { device?: Device; requiresGrad?: boolean } = {}): Tensor {
    return Tensor.fromArray(new Float32Array(shape.reduce((a, b) => a * b, 1)), shape, opts);
  }

  /** An int32 tensor's values when it was made from host data (Tensor.fromArray), else null. */
  get hostInt32(): Int32Array | null {
    return this.storage?.hostInt32 ?? null;
  }

  get disposed(): boolean {
    return this.storage === null;
  }

  get buffer(): GPUBuffer {
    if (!this.storage) throw new Error(`tensor${this.name ? ` "${this.name}"` : ''} [${this.shape}] was disposed`);
    return this.storage.buffer;
  }

  get byteLength(): number {
    return this.size * 4;
  }

  /** The storage-buffer binding of this tensor for a dispatch. */
  get binding(): { buffer: GPUBuffer; size: number } {
    return { buffer: this.buffer, size: Math.max(4, this.byteLength) };
  }

  /** A view with another shape over the same data (shares storage). Not recorded by autograd. */
  view(shape: readonly number[]): Tensor {
    const resolved = resolveShape(shape, this.size, this.shape);
    const storage = this.storage;
    if (!storage) throw new Error('view of a disposed tensor');
    storage.refs++;
    return new Tensor(storage, resolved, this.dtype, false);
  }

  async toArray(): Promise<Float32Array> {
    if (this.dtype !== 'f32') throw new Error('toArray(): tensor is int32; use toInt32Array()');
    if (this.size === 0) return new Float32Array(0);
    return new Float32Array(await this.device.read(this.buffer, 0, this.byteLength));
  }

  async toInt32Array(): Promise<Int32Array> {
    return new Int32Array(await this.device.read(this.buffer, 0, this.byteLength));
  }

  async item(): Promise<number> {
    if (this.size !== 1) throw new Error(`item(): tensor has ${this.size} elements, shape [${this.shape}]`);
    return (await this.toArray())[0];
  }

  /** Frees the GPU memory (deferred until the commands using it are submitted). Idempotent. */
  dispose(): void {
    if (!this.storage) return;
    this.storage.release();
    this.storage = null;
    const saved = this.gradFn?.saved;
    this.gradFn = null;
    if (saved) for (const t of saved) t.dispose();
    liveTensors--;
    for (const s of scopes) s.delete(this);
  }

  /** Backpropagates from this tensor (a scalar unless `gradOutput` is given). */
  backward(gradOutput?: Tensor): void {
    backward(this, gradOutput);
  }

  /** An uninitialised tensor of this one's shape, dtype and device (torch.empty_like). */
  emptyLike(): Tensor {
    return Tensor.empty(this.shape, { device: this.device, dtype: this.dtype });
  }

  /** Marks this tensor as outliving every open scope (as `keep(t)`); returns it. */
  keep(): this {
    return keep(this);
  }

  toString(): string {
    return `Tensor(${this.name ? `${this.name}, ` : ''}[${this.shape}], ${this.dtype}${this.requiresGrad ? ', requiresGrad' : ''})`;
  }
}


function checkShape(shape: readonly number[]): void {
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new Error(`invalid tensor shape [${shape}]`);
  }
}

function resolveShape(shape: readonly number[], size: number, from: readonly number[]): number[] {
  const out = [...shape];
  const infer = out.indexOf(-1);
  if (infer >= 0) {
    const rest = out.reduce((a, b, i) => (i === infer ? a : a * b), 1);
    out[infer] = rest === 0 ? 0 : size / rest;
  }
  if (out.reduce((a, b) => a * b, 1) !== size || out.some((d) => !Number.isInteger(d) || d < 0)) {
    throw new Error(`cannot view shape [${from}] as [${shape}]`);
  }
  return out;
}
