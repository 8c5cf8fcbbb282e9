// Scratch rgba32float textures per device, by role and size, for kernels that read operands as
// images (matmul_texture): cached, and emptied together when a new set would pass the byte limit.
import type { Device } from '../gpu/device.ts';

export interface ScratchTexture { texture: GPUTexture; view: GPUTextureView; bytes: number }
export interface TextureSpec { role: string; width: number; height: number }

/** The cache is emptied before it would hold more than `limitBytes` (tests lower it). */
export const scratchTextureConfig = { limitBytes: 256 * 1024 * 1024 };

const caches = new WeakMap<Device, Map<string, ScratchTexture>>();

function cacheOf(device: Device): Map<string, ScratchTexture> {
  let cache = caches.get(device);
  if (!cache) {
    const made = new Map<string, ScratchTexture>();
    device.onDestroy(() => {
      for (const t of made.values()) t.texture.destroy();
      made.clear();
    });
    caches.set(device, made);
    cache = made;
  }
  return cache;
}

const keyOf = (s: TextureSpec) => `${s.role} ${s.width}x${s.height}`;

/**
 * One texture per spec. The same one is handed out for the same role and size: work recorded earlier
 * in the device's queue is done with it before later commands overwrite it (WebGPU orders them).
 * Where the new ones would take the cache past the limit it is emptied first, so the textures of one
 * call stay valid together.
 */
export function scratchTextures(device: Device, specs: readonly TextureSpec[]): ScratchTexture[] {
  const cache = cacheOf(device);
  const adding = specs.filter((s) => !cache.has(keyOf(s))).reduce((sum, s) => sum + s.width * s.height * 16, 0);
  if (adding > 0 && scratchTextureBytes(device) + adding > scratchTextureConfig.limitBytes) releaseScratchTextures(device);
  return specs.map((s) => {
    let entry = cache.get(keyOf(s));
    if (!entry) {
      const texture = device.gpu.createTexture({
        size: [s.width, s.height], format: 'rgba32float', label: keyOf(s),
        usage: GPUTextureUsage.STORAGE_BINDING | GPUTextureUsage.TEXTURE_BINDING | GPUTextureUsage.COPY_DST,
      });
      entry = { texture, view: texture.createView(), bytes: s.width * s.height * 16 };
      cache.set(keyOf(s), entry);
    }
    return entry;
  });
}

/** Bytes of the scratch textures a device holds (benchmarks count them with the buffer pool). */
export function scratchTextureBytes(device: Device): number {
  let sum = 0;
  for (const t of caches.get(device)?.values() ?? []) sum += t.bytes;
  return sum;
}

/** Destroys the scratch textures after submitting the work recorded so far (which may use them). */
export function releaseScratchTextures(device: Device): void {
  const cache = caches.get(device);
  if (!cache || cache.size === 0) return;
  device.flush();
  for (const t of cache.values()) t.texture.destroy();
  cache.clear();
}
