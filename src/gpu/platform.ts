// What the runtime needs from its host: the WebGPU entry point. In a browser that is
// `navigator.gpu`, found by itself; Node registers Dawn's bindings (platform-node.ts) through the
// package's Node entry, so the platform-neutral core never imports a Node module.

export interface Platform {
  /** The WebGPU entry point (navigator.gpu or Dawn's GPU object). */
  gpu: GPU;
  /** Objects that must stay referenced while the device lives (Dawn's `create()` result). */
  keepAlive?: unknown;
  /** Told about each device created on it (Node: how to wait for a CPU adapter's work). */
  deviceCreated?(device: { isCPU: boolean }): void;
}

let platformFactory: (() => Promise<Platform>) | null = null;

/** Lets a host say how to make its Platform (the Node entry registers Dawn's bindings). */
export function registerPlatform(factory: () => Promise<Platform>): void {
  platformFactory = factory;
}

export async function defaultPlatform(): Promise<Platform> {
  if (platformFactory) return platformFactory();
  const gpu = (globalThis as { navigator?: { gpu?: GPU } }).navigator?.gpu;
  if (gpu) return { gpu };
  const inNode = (globalThis as { process?: { versions?: { node?: string } } }).process?.versions?.node !== undefined;
  throw new Error(inNode
    ? "Device.create(): no WebGPU platform registered. In Node import the package as 'vitcatsvdogs' (its Node entry " +
      "registers Dawn's bindings) or call registerPlatform(nodePlatform) from 'vitcatsvdogs/node'."
    : 'Device.create(): this browser has no WebGPU (navigator.gpu is missing). Use Chrome or Edge 113+, or enable ' +
      'WebGPU (chrome://flags/#enable-unsafe-webgpu; on Linux also --enable-features=Vulkan).');
}
