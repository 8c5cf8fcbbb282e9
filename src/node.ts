// The package's Node entry ('vitcatsvdogs' under the `node` condition, and 'vitcatsvdogs/node'):
// everything of the platform-neutral API, with Node's parts wired in: Dawn's WebGPU bindings as the
// platform and the autotune's disk cache.
import { registerPlatform } from './gpu/platform.ts';
import { nodePlatform } from './gpu/platform-node.ts';
import { setDefaultAutotuneCache } from './ops/autotune.ts';
import { nodeAutotuneCache } from './ops/autotune-cache-node.ts';

registerPlatform(nodePlatform);
setDefaultAutotuneCache(nodeAutotuneCache());

export * from './index.ts';
export { nodePlatform } from './gpu/platform-node.ts';
export { nodeAutotuneCache, autotuneCachePath } from './ops/autotune-cache-node.ts';
