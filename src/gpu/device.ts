// The device itself: adapter/device set-up, shader modules and pipelines (compiled on first use),
// one open command encoder + compute pass that many dispatches share, uniforms filled by field name
// from a per-submit arena, the buffer pool, copies, readback and error reporting.
import { BufferPool, type PoolStats } from './buffer-pool.ts';
import { defaultPlatform, type Platform } from './platform.ts';
import { Profiler, type KernelTiming } from './profiler.ts';
import { expandIncludes, featuresNeeded, matchUniformStruct, uniformStructs, type Shader, type UniformStruct } from './shaders.ts';

export type { KernelTiming } from './profiler.ts';
export type { Shader } from './shaders.ts';

export type Binding = GPUBuffer | { buffer: GPUBuffer; offset?: number; size: number } | GPUTextureView;

export interface DispatchDesc {
  shader: Shader;
  entry: string;
  /** `override` constants; part of the pipeline cache key */
  constants?: Record<string, number>;
  /**
   * The uniform struct at @group(0) @binding(0), by field name (fields not given are 0); the struct is
   * the shader's uniform struct that has all these fields. Omit when the entry point has no uniforms.
   */
  uniforms?: Readonly<Record<string, number | boolean>>;
  /** storage buffers (or texture views) at @binding(1), @binding(2), ... in order */
  bindings: readonly Binding[];
  /** workgroup counts; use `grid()` for 1-D work larger than 65535 workgroups */
  workgroups: readonly [number, number?, number?];
  /** the kernel's name in profiles (takeTimings) and errors; default "shader:entry" */
  label?: string;
}

export interface DeviceOptions {
  platform?: Platform;
  /** validation error scopes around every dispatch, reported with the kernel's name */
  debug?: boolean;
  /** per-dispatch GPU timestamps (needs `timestamp-query`); see `Device.setProfiling` */
  profile?: boolean;
  powerPreference?: GPUPowerPreference;
  /** optional WebGPU features not to request even where the adapter has them (tests of the fallback kernels) */
  disableFeatures?: string[];
}

const UNIFORM_SLOT = 256;
const UNIFORM_SLOTS = 1024;
const MAX_DISPATCHES_PER_SUBMIT = 1024;
const PENDING_RELEASE_LIMIT = 64 * 1024 * 1024;

let defaultDevice: Device | null = null;
/** the default device was destroyed (and no other created since): says so instead of "call create()" */
let defaultDestroyed = false;

export const SETUP_HINT =
  'no WebGPU adapter found. In Node run `npm run setup` (scripts/setup-gpu.sh): on Debian/Ubuntu as root it installs ' +
  "Mesa's lavapipe Vulkan driver (from bookworm-backports on Debian 12), elsewhere it prints the commands. In a browser, " +
  'use one with WebGPU (Chrome/Edge 113+, or enable it: chrome://flags/#enable-unsafe-webgpu).';

interface ShaderModule {
  code: string;
  module: GPUShaderModule | null;
  /** a feature the shader enables that the device lacks (module is then null) */
  missing?: string;
  origin: string[];
  uniforms: UniformStruct[];
  /** the compilation messages, checked once */
  compiled: Promise<void>;
  /** a caller of compile() gets the error: sync() need not report it again */
  awaited: boolean;
}

export class Device {
  readonly gpu: GPUDevice;
  readonly adapterInfo: GPUAdapterInfo;
  readonly features: ReadonlySet<string>;
  /** a CPU rasteriser (lavapipe, SwiftShader): ops pick kernels for it */
  readonly isCPU: boolean;
  /** the adapter's narrowest subgroup (0 where it does not say) */
  readonly subgroupMinSize: number;
  readonly pool: BufferPool;
  debug: boolean;

  /** held for its keepAlive (Dawn's GPU object must outlive the device) */
  private readonly platform: Platform;
  private readonly modules = new Map<string, ShaderModule>();
  private readonly pipelines = new Map<string, GPUComputePipeline>();
  private readonly uniformLayouts = new Map<string, UniformStruct>();
  private readonly readPool: BufferPool;
  private readonly profiler: Profiler;
  private readonly cleanups: (() => void)[] = [];
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private dispatchesInBatch = 0;
  private readonly uniformArena: GPUBuffer;
  private readonly uniformData = new ArrayBuffer(UNIFORM_SLOT * UNIFORM_SLOTS);
  private readonly uniformView = new DataView(this.uniformData);
  private uniformSlot = 0;
  private firstError: Error | null = null;
  private lost = false;
  private destroyed = false;
  private profiling = false;
  private pendingChecks: Promise<void>[] = [];
  /** CPU-side count of dispatches since creation */
  dispatchCount = 0;
  /** CPU-side count of buffer-to-texture copies since creation */
  copyCount = 0;

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
    this.profiler = new Profiler(device);
    this.uniformArena = device.createBuffer({
      size: UNIFORM_SLOT * UNIFORM_SLOTS, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST, label: 'uniforms',
    });
    if (options.profile) this.setProfiling(true);
    device.lost.then((info) => {
      this.lost = true;
      if (!this.destroyed) this.firstError ??= new Error(`WebGPU device lost (${info.reason}): ${info.message}`);
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
    platform.deviceCreated?.(device);
    if (!defaultDevice) {
      defaultDevice = device;
      defaultDestroyed = false;
    }
    return device;
  }

  /** The default device (the first created, until it is destroyed). */
  static get default(): Device {
    if (!defaultDevice || defaultDevice.destroyed) {
      throw new Error(defaultDestroyed
        ? 'the default Device was destroyed (device.destroy()): create a new one with `await Device.create()` and build the model again on it'
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

  // ---- shaders and pipelines -------------------------------------------------------------------

  /**
   * The compiled module of a shader, created on first use. WGSL errors reach `sync()`/`read()` (or
   * `compile()`) as exceptions naming shaders/<file>.wgsl:line.
   */
  private module(shader: Shader): ShaderModule {
    const known = this.modules.get(shader.name);
    if (known && known.code === shader.code) return known;
    if (known) {
      // same name, new code (a test or user kernel redefined it): drop its pipelines
      for (const key of [...this.pipelines.keys()]) if (key.startsWith(`${shader.name}:`)) this.pipelines.delete(key);
      for (const key of [...this.uniformLayouts.keys()]) if (key.startsWith(`${shader.name}:`)) this.uniformLayouts.delete(key);
    }
    const { code, origin } = expandIncludes(shader.name, shader.code, shader.library ?? {});
    const missing = featuresNeeded(code).find((f) => !this.features.has(f));
    const entry: ShaderModule = { code: shader.code, module: null, missing, origin, uniforms: [], compiled: Promise.resolve(), awaited: false };
    if (!missing) {
      entry.uniforms = uniformStructs(shader.name, code);
      // the scope keeps a WGSL error out of 'uncapturederror': getCompilationInfo reports it with file:line
      this.gpu.pushErrorScope('validation');
      const module = this.gpu.createShaderModule({ code, label: `${shader.name}.wgsl` });
      const scope = this.gpu.popErrorScope();
      entry.module = module;
      entry.compiled = Promise.all([module.getCompilationInfo(), scope]).then(([info]) => {
        const errors = info.messages.filter((m) => m.type === 'error');
        if (errors.length) {
          const lines = errors.map((m) => `${origin[m.lineNum - 1] ?? `shaders/${shader.name}.wgsl:${m.lineNum}`}:${m.linePos}: ${m.message}`);
          throw new Error(`WGSL compilation failed:\n${lines.join('\n')}`);
        }
      });
      // dispatches do not wait for it: a failure is reported at the next sync() or read()
      this.pendingChecks.push(entry.compiled.catch((e) => {
        if (!entry.awaited) this.firstError ??= e;
      }));
    }
    this.modules.set(shader.name, entry);
    return entry;
  }

  /**
   * Compiles shaders now and throws the first WGSL error, naming file and line (tests, user kernels);
   * a shader that enables a feature the device lacks is skipped (dispatching it throws).
   */
  async compile(...shaders: Shader[]): Promise<void> {
    await Promise.all(shaders.map((s) => {
      const m = this.module(s);
      m.awaited = true;
      return m.compiled;
    }));
  }

  pipeline(shader: Shader, entry: string, constants: Record<string, number> = {}): GPUComputePipeline {
    const key = this.pipelineKey(shader, entry, constants);
    let pipeline = this.pipelines.get(key);
    if (!pipeline) {
      const { module } = this.usableModule(shader);
      pipeline = this.gpu.createComputePipeline({ layout: 'auto', label: key, compute: { module, entryPoint: entry, constants } });
      this.pipelines.set(key, pipeline);
    }
    return pipeline;
  }

  /**
   * Creates the pipelines not yet made with createComputePipelineAsync, all at once, so that the driver
   * can compile them in parallel (a model's first step then finds them ready).
   */
  async preparePipelines(list: readonly { shader: Shader; entry: string; constants?: Record<string, number> }[]): Promise<void> {
    const wanted = new Map(list.map((p) => [this.pipelineKey(p.shader, p.entry, p.constants ?? {}), p]));
    await Promise.all([...wanted].map(async ([key, { shader, entry, constants = {} }]) => {
      if (this.pipelines.has(key)) return;
      const { module } = this.usableModule(shader);
      const pipeline = await this.gpu.createComputePipelineAsync({ layout: 'auto', label: key, compute: { module, entryPoint: entry, constants } });
      this.pipelines.set(key, pipeline);
    }));
  }

  private pipelineKey(shader: Shader, entry: string, constants: Record<string, number>): string {
    return `${shader.name}:${entry}:${Object.entries(constants).map(([k, v]) => `${k}=${v}`).join(',')}`;
  }

  private usableModule(shader: Shader): { module: GPUShaderModule } & ShaderModule {
    const m = this.module(shader);
    if (m.missing) throw new Error(`shaders/${shader.name}.wgsl needs the WebGPU feature '${m.missing}', which this device lacks`);
    return m as { module: GPUShaderModule } & ShaderModule;
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

  // ---- recording -------------------------------------------------------------------------------

  /** Records one dispatch into the open compute pass. */
  dispatch(d: DispatchDesc): void {
    this.checkUsable();
    const pipeline = this.pipeline(d.shader, d.entry, d.constants);
    const label = d.label ?? `${d.shader.name}:${d.entry}`;
    const entries: GPUBindGroupEntry[] = [];
    if (d.uniforms) entries.push(this.writeUniforms(d, label));
    d.bindings.forEach((b, i) => {
      const resource = b instanceof GPUTextureView ? b
        : 'size' in b && !(b instanceof GPUBuffer)
          ? { buffer: b.buffer, offset: b.offset ?? 0, size: Math.max(4, Math.ceil(b.size / 4) * 4) }
          : { buffer: b as GPUBuffer };
      entries.push({ binding: i + 1, resource });
    });
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

  /** Writes a dispatch's uniforms into the next arena slot, by the field names of its uniform struct. */
  private writeUniforms(d: DispatchDesc, label: string): GPUBindGroupEntry {
    const names = Object.keys(d.uniforms!);
    const layoutKey = `${d.shader.name}:${d.entry}:${names.join(',')}`;
    let layout = this.uniformLayouts.get(layoutKey);
    if (!layout) {
      layout = matchUniformStruct(label, this.module(d.shader).uniforms, names);
      this.uniformLayouts.set(layoutKey, layout);
    }
    if (this.uniformSlot === UNIFORM_SLOTS) this.flush();
    const base = this.uniformSlot * UNIFORM_SLOT;
    for (const field of layout.fields) {
      const raw = d.uniforms![field.name];
      const at = base + field.offset;
      if (raw === undefined) {
        this.uniformView.setUint32(at, 0, true); // a field not given is 0 (the slot holds an earlier dispatch's)
        continue;
      }
      const v = Number(raw);
      if (field.type === 'f32') {
        this.uniformView.setFloat32(at, v, true);
      } else if (field.type === 'u32') {
        if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new Error(`${label}: uniform ${field.name} (u32) is ${raw}`);
        this.uniformView.setUint32(at, v, true);
      } else {
        if (!Number.isInteger(v) || v < -0x80000000 || v > 0x7fffffff) throw new Error(`${label}: uniform ${field.name} (i32) is ${raw}`);
        this.uniformView.setInt32(at, v, true);
      }
    }
    this.uniformSlot++;
    return { binding: 0, resource: { buffer: this.uniformArena, offset: base, size: UNIFORM_SLOT } };
  }

  private beginPass(label: string): GPUComputePassEncoder {
    if (this.pass) return this.pass;
    if (this.profiling && this.profiler.full) this.flush();
    this.encoder ??= this.gpu.createCommandEncoder();
    const timestampWrites = this.profiling ? this.profiler.passWrites(label) : undefined;
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
    const readTimings = this.encoder && this.profiling ? this.profiler.resolve(this.encoder) : null;
    if (this.encoder) this.gpu.queue.submit([this.encoder.finish()]);
    // map the timestamps only after the submit that fills them (a pending map blocks the submit)
    if (readTimings) this.pendingChecks.push(readTimings());
    this.encoder = null;
    this.uniformSlot = 0;
    this.dispatchesInBatch = 0;
    this.pool.onSubmit();
    this.readPool.onSubmit();
  }

  // ---- results and errors ----------------------------------------------------------------------

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
    if (this.destroyed) throw new Error('this Device was destroyed (device.destroy())');
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
  }

  /** Collected GPU times per kernel label since the last call; clears them. */
  async takeTimings(): Promise<KernelTiming[]> {
    await this.sync();
    return this.profiler.take();
  }

  // ---- memory and life -------------------------------------------------------------------------

  memoryStats(): PoolStats {
    return this.pool.getStats();
  }

  /** Runs `fn` when the device is destroyed (ops free their per-device GPU objects this way). */
  onDestroy(fn: () => void): void {
    this.cleanups.push(fn);
  }

  get isDestroyed(): boolean {
    return this.destroyed;
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
    for (const fn of this.cleanups.splice(0)) fn();
    this.pool.trim();
    this.readPool.trim();
    this.uniformArena.destroy();
    this.profiler.destroy();
    this.modules.clear();
    this.pipelines.clear();
    this.gpu.destroy();
    if (defaultDevice === this) {
      defaultDevice = null;
      defaultDestroyed = true;
    }
  }
}
