// Node host: Dawn's WebGPU bindings (npm `webgpu`) and shader files read from ../../shaders.
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { mkdirSync } from 'node:fs';
import type { Platform } from './platform.ts';

export const SHADER_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'shaders');

// webgpu 0.6.2 crashes the process when the object returned by create() is garbage-collected,
// so it lives here for the life of the process.
let dawn: { gpu: GPU; keep: unknown } | null = null;

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
    const gpu = webgpu.create([]) as unknown as GPU;
    dawn = { gpu, keep: gpu };
  }
  const shaderSources: Record<string, string> = {};
  for (const file of readdirSync(SHADER_DIR)) {
    if (file.endsWith('.wgsl')) shaderSources[file.slice(0, -5)] = readFileSync(join(SHADER_DIR, file), 'utf8');
  }
  return { gpu: dawn.gpu, shaderSources, keepAlive: dawn.keep };
}
