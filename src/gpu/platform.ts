// What the runtime needs from its host. Node provides it in platform-node.ts; a browser would
// pass `navigator.gpu` and shader sources bundled as strings.

export interface Platform {
  /** The WebGPU entry point (navigator.gpu or Dawn's GPU object). */
  gpu: GPU;
  /** WGSL source of every shader file, keyed by file name without `.wgsl` (e.g. "matmul"). */
  shaderSources: Record<string, string>;
  /** Objects that must stay referenced while the device lives (Dawn's `create()` result). */
  keepAlive?: unknown;
}

let platformFactory: (() => Promise<Platform>) | null = null;

/** Lets a host register how to make its Platform (platform-node.ts does this for Node). */
export function registerPlatform(factory: () => Promise<Platform>): void {
  platformFactory = factory;
}

export async function defaultPlatform(): Promise<Platform> {
  if (platformFactory) return platformFactory();
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  if (nav?.gpu) {
    throw new Error('Device.create(): in a browser pass { platform: { gpu: navigator.gpu, shaderSources } }');
  }
  // Node: load the Dawn bindings lazily so that browser bundles never see them.
  const { nodePlatform } = await import('./platform-node.ts');
  return nodePlatform();
}
