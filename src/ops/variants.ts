// Which kernel variant the ops use on a device: set by setKernelVariants (tests, bench, a user),
// VITCATS_MATMUL_VARIANT, the autotune (ops/autotune.ts), or else by the adapter kind.
import type { Device } from '../gpu/device.ts';

/**
 * matmul kernels: 'register' (big register tiles; matmul_texture where subgroups exist), 'shared'
 * (workgroup-memory tiles) or 'subgroup4' (A shared by 4-lane subgroups, for SwiftShader)
 */
export type KernelVariant = 'register' | 'shared' | 'subgroup4';
export const MATMUL_VARIANTS: readonly KernelVariant[] = ['register', 'shared', 'subgroup4'];

export interface KernelVariants {
  matmul: KernelVariant;
}

const chosen = new WeakMap<Device, KernelVariants>();

function envMatmulVariant(): KernelVariant | undefined {
  const v = (globalThis as { process?: { env: Record<string, string | undefined> } }).process?.env?.VITCATS_MATMUL_VARIANT;
  if (v === undefined || v === '') return undefined;
  if (!MATMUL_VARIANTS.includes(v as KernelVariant)) {
    throw new Error(`VITCATS_MATMUL_VARIANT is "${v}"; expected one of ${MATMUL_VARIANTS.join(', ')}`);
  }
  return v as KernelVariant;
}

/** Whether the variant was forced by the environment (the autotune then leaves it alone). */
export function variantForcedByEnv(): boolean {
  return envMatmulVariant() !== undefined;
}

/** The variants the ops use on this device. */
export function kernelVariants(device: Device): KernelVariants {
  let v = chosen.get(device);
  if (!v) {
    // Big register tiles without workgroup memory are ~5x faster on a CPU rasteriser, where barriers
    // are expensive; real GPUs want shared-memory tiles. SwiftShader (Chromium's software adapter)
    // gathers every load lane by lane: its kernel shares A across 4-lane subgroups (4x the register one).
    const swiftShader = /swiftshader/i.test(device.description);
    v = { matmul: envMatmulVariant() ?? (swiftShader ? 'subgroup4' : device.isCPU ? 'register' : 'shared') };
    chosen.set(device, v);
  }
  return v;
}

/** Sets some variants for this device; returns the previous ones (tests restore them). */
export function setKernelVariants(device: Device, v: Partial<KernelVariants>): KernelVariants {
  const before = { ...kernelVariants(device) };
  chosen.set(device, { ...before, ...v });
  return before;
}
