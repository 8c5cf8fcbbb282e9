// The device wrapper: adapter/device set-up, shader modules, pipeline cache, one open command
// encoder + compute pass that many dispatches share, uniform arena, buffer pool, readback, profiling.
import { BufferPool, type PoolStats } from './buffer-pool.ts';
import { defaultPlatform, type Platform } from './platform.ts';

export type Binding = GPUBuffer | { buffer: GPUBuffer; offset?: number; size: number } | GPUTextureView;

export interface DispatchDesc {
  /** shader file name without `.wgsl`, e.g. "matmul" */
  shader: string;
  entry: string;
  /** `override` constants; part of the pipeline cache key */
  constants?: Record<string, number>;
  /**
   * Uniform struct at @group(0) @binding(0): the u32 fields `u` first, then the f32 fields `f`,
   * in declaration order. Omit both when the entry point declares no uniforms.
   */
  u?: readonly number[];
  f?: readonly number[];
  /** storage buffers (or texture views) at @binding(1), @binding(2), ... in order */
  bindings: readonly Binding[];
  /** workgroup counts; use `grid()` for 1-D work larger than 65535 workgroups */
  workgroups: readonly [number, number?, number?];
  /** the kernel's name in profiles (takeTimings) and errors; default "shader:entry" */
  label?: string;
}

export type KernelVariant = 'register' | 'shared';

export interface DeviceOptions {
  platform?: Platform;
  /** validation error scopes around every dispatch, reported with the kernel's name */
  debug?: boolean;
  /** per-dispatch GPU timestamps (needs `timestamp-query`); see `Device.profile` */
  profile?: boolean;
  /** force the matmul variant instead of choosing by adapter (wins over env and autotune) */
  matmulVariant?: KernelVariant;
  /**
   * pick the matmul variant by a short timing run at creation (src/gpu/autotune.ts), cached on
   * disk per adapter; off by default (tests), on in bench/ and the trainer
   */
  autotune?: boolean;
  powerPreference?: GPUPowerPreference;
  /** optional WebGPU features not to request even where the adapter has them (tests of the fallback kernels) */
  disableFeatures?: string[];
}

export interface KernelTiming { name: string; ms: number; count: number }

const UNIFORM_SLOT = 256;
const UNIFORM_SLOTS = 1024;
const MAX_DISPATCHES_PER_SUBMIT = 1024;
const PENDING_RELEASE_LIMIT = 64 * 1024 * 1024;

let defaultDevice: Device | null = null;
/** a default device was destroyed (the getter says so while there is none) */
let defaultDestroyed = false;

/** The WebGPU features a shader's `enable` directives need (WGSL `f16` is the feature 'shader-f16'). */
function featuresNeeded(code: string): string[] {
  const names = [...code.matchAll(/^\s*enable\s+([\w\s,]+);/gm)].flatMap((m) => m[1].split(',').map((n) => n.trim()));
  return names.filter(Boolean).map((n) => (n === 'f16' ? 'shader-f16' : n.replace(/_/g, '-')));
}

/**
 * Replaces each `#include "other.wgsl"` line with that shader file's code (WGSL has no imports; the
 * included file must have no `enable` directive). `origin[i]` names the file and line of code line i + 1.
 */
function expandIncludes(name: string, code: string, sources: Record<string, string>): { code: string; origin: string[] } {
  const lines: string[] = [], origin: string[] = [];
  code.split('\n').forEach((line, i) => {
    const include = /^#include "(\w+)\.wgsl"\s*$/.exec(line)?.[1];
    if (include === undefined) {
      lines.push(line);
      origin.push(`shaders/${name}.wgsl:${i + 1}`);
      return;
    }
    if (sources[include] === undefined) throw new Error(`shaders/${name}.wgsl:${i + 1}: no shaders/${include}.wgsl to include`);
    sources[include].split('\n').forEach((l, j) => {
      lines.push(l);
      origin.push(`shaders/${include}.wgsl:${j + 1}`);
    });
  });
  return { code: lines.join('\n'), origin };
}

function envMatmulVariant(): KernelVariant | undefined {
  return (globalThis as { process?: { env: Record<string, string | undefined> } }).process?.env
    ?.VITCATS_MATMUL_VARIANT as KernelVariant | undefined;
}

export const SETUP_HINT =
  'no WebGPU adapter found. Run `npm run setup` (scripts/setup-gpu.sh): on Debian/Ubuntu as root it installs ' +
  "Mesa's lavapipe Vulkan driver (from bookworm-backports on Debian 12), elsewhere it prints the commands.";

export class Device {
  readonly gpu: GPUDevice;
  readonly adapterInfo: GPUAdapterInfo;
  readonly features: ReadonlySet<string>;
  readonly isCPU: boolean;
  /** the adapter's narrowest subgroup (0 where it does not say) */
  readonly subgroupMinSize: number;
  readonly pool: BufferPool;
  /** the matmul variant ops use; set by options, VITCATS_MATMUL_VARIANT, autotune or adapter kind */
  matmulVariant: KernelVariant;
  debug: boolean;

  private readonly platform: Platform;
  private readonly modules = new Map<string, GPUShaderModule>();
  /** shader files not compiled because the device lacks a feature they enable: name -> feature */
  private readonly skippedShaders = new Map<string, string>();
  private readonly pipelines = new Map<string, GPUComputePipeline>();
  private readonly readPool: BufferPool;
  /** scratch textures by role and size (scratchTextures) */
  private readonly textures = new Map<string, { texture: GPUTexture; view: GPUTextureView; bytes: number }>();
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private dispatchesInBatch = 0;
  private readonly uniformArena: GPUBuffer;
  private readonly uniformData = new ArrayBuffer(UNIFORM_SLOT * UNIFORM_SLOTS);
  private readonly uniformU32 = new Uint32Array(this.uniformData);
  private readonly uniformF32 = new Float32Array(this.uniformData);
  private uniformSlot = 0;
  private firstError: Error | null = null;
  private lost = false;
  private destroyed = false;
  private pendingChecks: Promise<void>[] = [];
  // profiling
  private profiling = false;
  private querySet: GPUQuerySet | null = null;
  private queryLabels: string[] = [];
  private timings = new Map<string, KernelTiming>();
  /** CPU-side count of dispatches since creation */
  dispatchCount = 0;
  /** CPU-side count of buffer-to-texture copies since creation */
  copyCount = 0;
  /** scratchTextures empties its cache before it would hold more than this many bytes */
  scratchTextureLimit = 256 * 1024 * 1024;

  private constructor(platform: Platform, adapter: GPUAdapter, device: GPUDevice, options: DeviceOptions) {
    this.platform = platform;
    this.gpu = device;
    this.adapterInfo = adapter.info;
    this.features = new Set(device.features as unknown as Iterable<string>);
    this.subgroupMinSize = (adapter.info as { subgroupMinSize?: number }).subgroupMinSize ?? 0;
    const desc = `${adapter.info.vendor} ${adapter.info.architecture} ${adapter.info.device} ${adapter.info.description}`;
    this.isCPU = /llvmpipe|lavapipe|swiftshader|software|cpu/i.test(desc);
    this.debug = options.debug ?? false;
    const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
    this.pool = new BufferPool(device, usage, 'tensor');
    this.readPool = new BufferPool(device, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST, 'readback');
    this.uniformArena = device.createBuffer({
      size: UNIFORM_SLOT * UNIFORM_SLOTS, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST, label: 'uniforms',
    });
    const envVariant = envMatmulVariant();
    // Big register tiles without workgroup memory are ~5x faster on a CPU rasteriser, where barriers
    // are expensive; real GPUs want shared-memory tiles.
    this.matmulVariant = options.matmulVariant ?? envVariant ?? (this.isCPU ? 'register' : 'shared');
    if (options.profile) this.setProfiling(true);
    device.lost.then((info) => {
      this.lost = true;
      if (!this.destroyed) {
        const err = new Error(`WebGPU device lost (${info.reason}): ${info.message}`);
        this.firstError ??= err;
        console.error(err.message);
      }
    });
    device.addEventListener('uncapturederror', (event) => {
      const e = (event as GPUUncapturedErrorEvent).error;
      this.firstError ??= new Error(`WebGPU error: ${e.message}`);
    });
  }

  /** Creates a device; the first one created becomes the default used by `Tensor` and the models. */
  static async create(options: DeviceOptions = {}): Promise<Device> {
    const platform = options.platform ?? (await defaultPlatform());
    const adapter = await platform.gpu.requestAdapter({ powerPreference: options.powerPreference ?? 'high-performance' });
    if (!adapter) throw new Error(`Device.create(): ${SETUP_HINT}`);
    const wanted: GPUFeatureName[] = ['timestamp-query', 'shader-f16', 'subgroups' as GPUFeatureName];
    const requiredFeatures = wanted.filter((f) => adapter.features.has(f) && !options.disableFeatures?.includes(f));
    const a = adapter.limits;
    const requiredLimits: Record<string, number> = {
      maxStorageBufferBindingSize: a.maxStorageBufferBindingSize,
      maxBufferSize: a.maxBufferSize,
      maxStorageBuffersPerShaderStage: Math.min(a.maxStorageBuffersPerShaderStage, 10),
      maxComputeWorkgroupStorageSize: a.maxComputeWorkgroupStorageSize,
      maxTextureDimension2D: a.maxTextureDimension2D,
      maxComputeInvocationsPerWorkgroup: Math.min(a.maxComputeInvocationsPerWorkgroup, 256),
      maxComputeWorkgroupSizeX: Math.min(a.maxComputeWorkgroupSizeX, 256),
      maxComputeWorkgroupSizeY: Math.min(a.maxComputeWorkgroupSizeY, 256),
    };
    const gpuDevice = await adapter.requestDevice({ requiredFeatures, requiredLimits, label: 'vitcatsvdogs' });
    const device = new Device(platform, adapter, gpuDevice, options);
    try {
      await device.compileShaders();
    } catch (e) {
      device.destroy(); // a failed start must not keep Node alive
      throw e;
    }
    defaultDevice ??= device;
    if (options.autotune && !options.matmulVariant && !envMatmulVariant()) {
      // loaded lazily: the autotuner pulls in the matmul op and (on Node) its disk cache
      const { autotuneMatmul } = await import('./autotune.ts');
      device.matmulVariant = (await autotuneMatmul(device)).matmulVariant;
    }
    return device;
  }

  /** The default device (the first created). */
  static get default(): Device {
    if (!defaultDevice || defaultDevice.destroyed) {
      throw new Error(defaultDestroyed
        ? 'the default Device was destroyed (device.destroy()): its tensors and models cannot be used any more; `await Device.create()` makes a new default'
        : 'no default Device: call `await Device.create()` first');
    }
    return defaultDevice;
  }

  static get hasDefault(): boolean {
    return defaultDevice !== null && !defaultDevice.destroyed;
  }

  get description(): string {
    const i = this.adapterInfo;
    return [i.vendor, i.architecture, i.device, i.description].filter(Boolean).join(' ');
  }

  /**
   * Compiles every shader file and turns WGSL errors into exceptions naming file and line. A file that
   * enables a feature the device lacks is skipped; dispatching it throws (ops choose another kernel).
   */
  private async compileShaders(): Promise<void> {
    for (const [name, source] of Object.entries(this.platform.shaderSources)) {
      const missing = featuresNeeded(source).find((f) => !this.features.has(f));
      if (missing) {
        this.skippedShaders.set(name, missing);
        continue;
      }
      await this.compileOne(name, source);
    }
  }

  /** Compiles an extra WGSL module at run time (tests, user kernels); same error reporting. */
  async addShader(name: string, code: string): Promise<void> {
    this.platform.shaderSources[name] = code;
    await this.compileOne(name, code);
  }

  private async compileOne(name: string, source: string): Promise<void> {
    const { code, origin } = expandIncludes(name, source, this.platform.shaderSources);
    this.gpu.pushErrorScope('validation');
    const module = this.gpu.createShaderModule({ code, label: `${name}.wgsl` });
    const info = await module.getCompilationInfo();
    await this.gpu.popErrorScope();
    const errors = info.messages.filter((m) => m.type === 'error');
    if (errors.length) {
      const lines = errors.map((m) => `${origin[m.lineNum - 1] ?? `shaders/${name}.wgsl:${m.lineNum}`}:${m.linePos}: ${m.message}`);
      throw new Error(`WGSL compilation failed:\n${lines.join('\n')}`);
    }
    this.modules.set(name, module);
  }

  pipeline(shader: string, entry: string, constants: Record<string, number> = {}): GPUComputePipeline {
    const key = `${shader}:${entry}:${Object.entries(constants).map(([k, v]) => `${k}=${v}`).join(',')}`;
    let pipeline = this.pipelines.get(key);
    if (!pipeline) {
      const module = this.modules.get(shader);
      const missing = this.skippedShaders.get(shader);
      if (missing) throw new Error(`shaders/${shader}.wgsl needs the WebGPU feature '${missing}', which this device lacks`);
      if (!module) throw new Error(`unknown shader "${shader}": no shaders/${shader}.wgsl`);
      pipeline = this.gpu.createComputePipeline({
        layout: 'auto', label: key, compute: { module, entryPoint: entry, constants },
      });
      this.pipelines.set(key, pipeline);
    }
    return pipeline;
  }

  get pipelineCount(): number {
    return this.pipelines.size;
  }

  /** Workgroup grid for `n` items, `perWorkgroup` each: spills into y past 65535 workgroups. */
  grid(n: number, perWorkgroup: number): [number, number, number] {
    const groups = Math.max(1, Math.ceil(n / perWorkgroup));
    if (groups <= 65535) return [groups, 1, 1];
    const y = Math.ceil(groups / 65535);
    return [Math.ceil(groups / y), y, 1];
  }

  /** Records one dispatch into the open compute pass. */
  dispatch(d: DispatchDesc): void {
    this.checkUsable();
    const pipeline = this.pipeline(d.shader, d.entry, d.constants);
    const entries: GPUBindGroupEntry[] = [];
    const u = d.u ?? [];
    const f = d.f ?? [];
    if (u.length || f.length) {
      if (u.length + f.length > UNIFORM_SLOT / 4) throw new Error(`${d.shader}:${d.entry}: too many uniforms`);
      if (this.uniformSlot === UNIFORM_SLOTS) this.flush();
      const base = (this.uniformSlot * UNIFORM_SLOT) / 4;
      for (let i = 0; i < u.length; i++) {
        const v = u[i];
        if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new Error(`${d.shader}:${d.entry}: u32 uniform ${i} is ${v}`);
        this.uniformU32[base + i] = v;
      }
      for (let i = 0; i < f.length; i++) this.uniformF32[base + u.length + i] = f[i];
      entries.push({
        binding: 0,
        resource: { buffer: this.uniformArena, offset: this.uniformSlot * UNIFORM_SLOT, size: UNIFORM_SLOT },
      });
      this.uniformSlot++;
    }
    d.bindings.forEach((b, i) => {
      const resource = b instanceof GPUTextureView ? b
        : 'size' in b && !(b instanceof GPUBuffer)
          ? { buffer: b.buffer, offset: b.offset ?? 0, size: Math.max(4, Math.ceil(b.size / 4) * 4) }
          : { buffer: b as GPUBuffer };
      entries.push({ binding: i + 1, resource });
    });
    const label = d.label ?? `${d.shader}:${d.entry}`;
    if (this.debug) this.gpu.pushErrorScope('validation');
    const bindGroup = this.gpu.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries, label });
    const pass = this.beginPass(label);
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    const [x, y = 1, z = 1] = d.workgroups;
    pass.dispatchWorkgroups(x, y, z);
    if (this.profiling) this.endPass();
    if (this.debug) {
      this.pendingChecks.push(this.gpu.popErrorScope().then((e) => {
        if (e) this.firstError ??= new Error(`WebGPU validation error in ${label}: ${e.message}`);
      }));
    }
    this.dispatchCount++;
    // Submit early when many freed buffers wait for a submit: otherwise a whole training step is
    // one submit and the pool must allocate fresh buffers for everything freed during it.
    if (++this.dispatchesInBatch >= MAX_DISPATCHES_PER_SUBMIT || this.pool.pendingBytes > PENDING_RELEASE_LIMIT) this.flush();
  }

  private beginPass(label: string): GPUComputePassEncoder {
    if (this.pass) return this.pass;
    this.encoder ??= this.gpu.createCommandEncoder();
    let timestampWrites: GPUComputePassTimestampWrites | undefined;
    if (this.profiling && this.querySet) {
      if (this.queryLabels.length * 2 >= this.querySet.count) this.flush();
      this.encoder ??= this.gpu.createCommandEncoder();
      const i = this.queryLabels.length;
      this.queryLabels.push(label);
      timestampWrites = { querySet: this.querySet, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 };
    }
    this.pass = this.encoder.beginComputePass({ timestampWrites });
    return this.pass;
  }

  private endPass(): void {
    this.pass?.end();
    this.pass = null;
  }

  /** Records a buffer-to-buffer copy (ends the open compute pass). */
  copy(src: GPUBuffer, srcOffset: number, dst: GPUBuffer, dstOffset: number, bytes: number): void {
    this.checkUsable();
    this.endPass();
    this.encoder ??= this.gpu.createCommandEncoder();
    this.encoder.copyBufferToBuffer(src, srcOffset, dst, dstOffset, bytes);
  }

  /** Writes host data into a buffer, ordered after everything recorded so far. */
  write(buffer: GPUBuffer, offset: number, data: ArrayBufferView): void {
    this.checkUsable();
    // queue.writeBuffer runs before the commands still in the open encoder, so submit them first
    if (this.encoder) this.flush();
    this.gpu.queue.writeBuffer(buffer, offset, data.buffer, data.byteOffset, data.byteLength);
  }

  /** Submits everything recorded so far. */
  flush(): void {
    if (this.lost) return;
    this.endPass();
    if (this.uniformSlot > 0) {
      this.gpu.queue.writeBuffer(this.uniformArena, 0, this.uniformData, 0, this.uniformSlot * UNIFORM_SLOT);
    }
    let readTimings: (() => Promise<void>) | null = null;
    if (this.encoder && this.profiling && this.querySet && this.queryLabels.length) {
      const n = this.queryLabels.length * 2;
      const resolveBuf = this.gpu.createBuffer({ size: n * 8, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
      const readBuf = this.gpu.createBuffer({ size: n * 8, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
      this.encoder.resolveQuerySet(this.querySet, 0, n, resolveBuf, 0);
      this.encoder.copyBufferToBuffer(resolveBuf, 0, readBuf, 0, n * 8);
      const labels = this.queryLabels;
      this.queryLabels = [];
      readTimings = () => this.collectTimings(readBuf, labels, resolveBuf);
    }
    if (this.encoder) this.gpu.queue.submit([this.encoder.finish()]);
    // map the timestamps only after the submit that fills them (a pending map blocks the submit)
    if (readTimings) this.pendingChecks.push(readTimings());
    this.encoder = null;
    this.uniformSlot = 0;
    this.dispatchesInBatch = 0;
    this.pool.onSubmit();
    this.readPool.onSubmit();
  }

  /** Copies `bytes` from a GPU buffer to the host. Submits pending work first. */
  async read(buffer: GPUBuffer, offset: number, bytes: number): Promise<ArrayBuffer> {
    this.checkUsable();
    const size = Math.ceil(bytes / 4) * 4;
    const staging = this.readPool.acquire(size);
    this.copy(buffer, offset, staging, 0, size);
    this.flush();
    await staging.mapAsync(GPUMapMode.READ, 0, size);
    const out = staging.getMappedRange(0, size).slice(0, bytes);
    staging.unmap();
    this.readPool.release(staging);
    await this.checkErrors();
    return out;
  }

  /** Waits for all submitted work and throws the first WebGPU error seen, if any. */
  async sync(): Promise<void> {
    this.flush();
    await this.gpu.queue.onSubmittedWorkDone();
    await this.checkErrors();
  }

  private async checkErrors(): Promise<void> {
    if (this.pendingChecks.length) {
      const checks = this.pendingChecks;
      this.pendingChecks = [];
      await Promise.all(checks);
    }
    if (this.firstError) {
      const e = this.firstError;
      this.firstError = null;
      throw e;
    }
  }

  private checkUsable(): void {
    if (this.destroyed) throw new Error('Device was destroyed');
    if (this.lost) throw this.firstError ?? new Error('WebGPU device lost');
  }

  // ---- profiling -------------------------------------------------------------------------------

  get canTime(): boolean {
    return this.features.has('timestamp-query');
  }

  /** Per-dispatch GPU timestamps on/off (one compute pass per dispatch while on). */
  setProfiling(on: boolean): void {
    if (on && !this.canTime) throw new Error('profiling needs the timestamp-query feature, which this adapter lacks');
    this.flush();
    this.profiling = on;
    if (on && !this.querySet) this.querySet = this.gpu.createQuerySet({ type: 'timestamp', count: 4096 });
  }

  private async collectTimings(readBuf: GPUBuffer, labels: string[], resolveBuf: GPUBuffer): Promise<void> {
    await readBuf.mapAsync(GPUMapMode.READ);
    const t = new BigUint64Array(readBuf.getMappedRange());
    labels.forEach((name, i) => {
      const ms = Number(t[2 * i + 1] - t[2 * i]) / 1e6;
      const entry = this.timings.get(name) ?? { name, ms: 0, count: 0 };
      entry.ms += Math.max(0, ms);
      entry.count++;
      this.timings.set(name, entry);
    });
    readBuf.unmap();
    readBuf.destroy();
    resolveBuf.destroy();
  }

  /** Collected GPU times per kernel (shader:entry) since the last call; clears them. */
  async takeTimings(): Promise<KernelTiming[]> {
    await this.sync();
    const out = [...this.timings.values()];
    this.timings.clear();
    return out;
  }

  // ---- memory ----------------------------------------------------------------------------------

  memoryStats(): PoolStats {
    return this.pool.getStats();
  }

  /**
   * width x height rgba32float textures, one per role, that kernels may fill (copies, storage writes) and
   * read (sampled), e.g. matmul's operands. The same one is handed out for the same role and size: work
   * recorded earlier in this device's queue is done with it before later commands overwrite it (WebGPU
   * orders them). Where the new ones would take the cache past `scratchTextureLimit`, it is emptied
   * first, so the textures of one call stay valid together.
   */
  scratchTextures(specs: { role: string; width: number; height: number }[]): { texture: GPUTexture; view: GPUTextureView }[] {
    const key = (s: { role: string; width: number; height: number }) => `${s.role} ${s.width}x${s.height}`;
    const adding = specs.filter((s) => !this.textures.has(key(s))).reduce((sum, s) => sum + s.width * s.height * 16, 0);
    if (adding > 0 && this.textureBytes + adding > this.scratchTextureLimit) this.releaseTextures();
    return specs.map((s) => {
      let entry = this.textures.get(key(s));
      if (!entry) {
        const texture = this.gpu.createTexture({
          size: [s.width, s.height], format: 'rgba32float', label: key(s),
          usage: GPUTextureUsage.STORAGE_BINDING | GPUTextureUsage.TEXTURE_BINDING | GPUTextureUsage.COPY_DST,
        });
        entry = { texture, view: texture.createView(), bytes: s.width * s.height * 16 };
        this.textures.set(key(s), entry);
      }
      return entry;
    });
  }

  /**
   * Records a copy of `size` = [texels per row, rows] from a buffer into a texture at row `originY`
   * (copies sit between compute passes: this ends the open one). GPU timestamps do not cover copies;
   * `copyCount` tells a benchmark that some happened.
   */
  copyToTexture(src: GPUImageCopyBuffer, texture: GPUTexture, size: [number, number], originY: number): void {
    this.checkUsable();
    this.endPass();
    this.encoder ??= this.gpu.createCommandEncoder();
    this.encoder.copyBufferToTexture(src, { texture, origin: [0, originY] }, size);
    this.copyCount++;
  }

  /** bytes of the scratch textures held (see scratchTextures) */
  get textureBytes(): number {
    let sum = 0;
    for (const t of this.textures.values()) sum += t.bytes;
    return sum;
  }

  /** Destroys the scratch textures after submitting the work recorded so far (which may use them). */
  releaseTextures(): void {
    if (this.textures.size === 0) return;
    this.flush();
    for (const t of this.textures.values()) t.texture.destroy();
    this.textures.clear();
  }

  /** Releases the device; Node can exit afterwards. */
  destroy(): void {
    if (this.destroyed) return;
    try {
      this.flush();
    } catch {
      /* device may be lost */
    }
    this.destroyed = true;
    for (const t of this.textures.values()) t.texture.destroy();
    this.textures.clear();
    this.pool.trim();
    this.readPool.trim();
    this.uniformArena.destroy();
    this.querySet?.destroy();
    this.modules.clear();
    this.pipelines.clear();
    this.gpu.destroy();
    if (defaultDevice === this) [defaultDevice, defaultDestroyed] = [null, true];
  }
}
