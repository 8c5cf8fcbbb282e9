// Which kernel variant the ops use on a device: set by setKernelVariants (tests, bench, a user),
// VITCATS_MATMUL_VARIANT / VITCATS_ATTENTION_VARIANT, the autotune (ops/autotune.ts), or else by the
// adapter kind.
import type { Device } from '../gpu/device.ts';

/**
 * matmul kernels: 'register' (big register tiles; matmul_texture where subgroups exist), 'shared'
 * (workgroup-memory tiles) or 'subgroup4' (A shared by 4-lane subgroups, for SwiftShader)
 */
export type KernelVariant = 'register' | 'shared' | 'subgroup4';
export const MATMUL_VARIANTS: readonly KernelVariant[] = ['register', 'shared', 'subgroup4'];

/**
 * softmax attention (ops/attention.ts): 'unfused' (matmuls around a [B, H, S, S] score buffer, the
 * reference path), 'fused-tiles' (one kernel forward, two backward, workgroup-memory tiles: GPUs) or
 * 'fused-texture' (the same without barriers, reading rows from textures: lavapipe)
 */
export type AttentionVariant = 'unfused' | 'fused-tiles' | 'fused-texture';
export const ATTENTION_VARIANTS: readonly AttentionVariant[] = ['unfused', 'fused-tiles', 'fused-texture'];

/** Sequences longer than this many tokens use `attentionLong` (the kernels' ranking can flip with length). */
export const LONG_SEQUENCE = 384;

export interface KernelVariants {
  matmul: KernelVariant;
  /** attention up to LONG_SEQUENCE tokens */
  attention: AttentionVariant;
  /** attention past LONG_SEQUENCE tokens (setting only `attention` sets both) */
  attentionLong: AttentionVariant;
}

const chosen = new WeakMap<Device, KernelVariants>();

function envVariant<T extends string>(name: string, allowed: readonly T[]): T | undefined {
  const v = (globalThis as { process?: { env: Record<string, string | undefined> } }).process?.env?.[name];
  if (v === undefined || v === '') return undefined;
  if (!allowed.includes(v as T)) throw new Error(`${name} is "${v}"; expected one of ${allowed.join(', ')}`);
  return v as T;
}

const envMatmulVariant = () => envVariant('VITCATS_MATMUL_VARIANT', MATMUL_VARIANTS);

/** VITCATS_ATTENTION_VARIANT, where set (the autotune then leaves the attention variant alone). */
export const envAttentionVariant = () => envVariant('VITCATS_ATTENTION_VARIANT', ATTENTION_VARIANTS);

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
    // On lavapipe the texture matmul around the score buffer measured faster than the fused texture
    // kernels at 577 tokens, slower at 197 (the autotune times both per length); GPUs want the fused tiles.
    const attention = envAttentionVariant() ?? (device.isCPU ? 'unfused' : 'fused-tiles');
    v = { matmul: envMatmulVariant() ?? (swiftShader ? 'subgroup4' : device.isCPU ? 'register' : 'shared'), attention, attentionLong: attention };
    chosen.set(device, v);
  }
  return v;
}

/** Sets some variants for this device; returns the previous ones (tests restore them). */
export function setKernelVariants(device: Device, v: Partial<KernelVariants>): KernelVariants {
  const before = { ...kernelVariants(device) };
  chosen.set(device, { ...before, ...(v.attention && !v.attentionLong ? { attentionLong: v.attention } : {}), ...v });
  return before;
}
