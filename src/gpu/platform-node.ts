// Node host: Dawn's WebGPU bindings (npm `webgpu`).
import { mkdirSync } from 'node:fs';
import type { Platform } from './platform.ts';

// webgpu 0.6.2 crashes the process when the object returned by create() is garbage-collected,
// so it lives here for the life of the process.
let dawn: GPU | null = null;

export async function nodePlatform(): Promise<Platform> {
  if (!process.env.XDG_RUNTIME_DIR) {
    // Mesa's lavapipe wants a runtime dir; an unset one only produces warnings, but set it anyway.
    const dir = `/tmp/xdg-runtime-${process.getuid?.() ?? 0}`;
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    process.env.XDG_RUNTIME_DIR = dir;
  }
  if (!dawn) {
    const webgpu = await import('webgpu');
    Object.assign(globalThis, webgpu.globals);
    // unquantized GPU timestamps: Dawn rounds them to 65.5 µs by default (a browser's timing-attack guard)
    dawn = webgpu.create(['disable-dawn-features=timestamp_quantization']) as unknown as GPU;
  }
  return { gpu: dawn, keepAlive: dawn };
}
