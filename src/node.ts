// The package's Node entry ('vitcatsvdogs' under the `node` condition, and 'vitcatsvdogs/node'):
// everything of the platform-neutral API, with Node's parts wired in: Dawn's WebGPU bindings as the
// platform, the autotune's disk cache, and checkpoint folders on disk for fromPretrained/savePretrained.
import { registerPlatform } from './gpu/platform.ts';
import { nodePlatform } from './gpu/platform-node.ts';
import { setDefaultAutotuneCache } from './ops/autotune.ts';
import { nodeAutotuneCache } from './ops/autotune-cache-node.ts';
import { registerCheckpointFolders } from './vit/checkpoint.ts';
import { folderFiles, folderWriter } from './io/files-node.ts';

registerPlatform(nodePlatform);
setDefaultAutotuneCache(nodeAutotuneCache());
registerCheckpointFolders({ open: folderFiles, writer: folderWriter });

export * from './index.ts';
export { nodePlatform } from './gpu/platform-node.ts';
export { nodeAutotuneCache, autotuneCachePath } from './ops/autotune-cache-node.ts';
export { folderFiles, folderWriter, readCheckpointDir, writeCheckpointDir, writeFileAtomic, readFileBytes } from './io/files-node.ts';
