// Prints the WebGPU adapter Dawn finds, or exits 1. Used by setup-gpu.sh.
import { create, globals } from 'webgpu';
Object.assign(globalThis, globals);
const gpu = create([]);
const adapter = await gpu.requestAdapter();
if (!adapter) { console.error('no WebGPU adapter'); process.exit(1); }
const info = adapter.info ?? {};
console.log(`${info.vendor ?? ''} ${info.architecture ?? ''} ${info.device ?? ''} ${info.description ?? ''}`.trim());
process.exit(0);
