// Test entry: runs every test/*.test.ts with uvu in one process on one WebGPU device, then
// destroys it (Dawn keeps Node alive while a device exists) and prints "N passed, M failed".
//   node --import tsx test/run.ts [substring filter]
import { readdirSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { dirname, join } from 'node:path';
import { Device } from '../src/gpu/device.ts';
import { setupDevice } from './helpers.ts';

const dir = dirname(fileURLToPath(import.meta.url));
const filter = process.argv[2] ?? '';
const files = readdirSync(dir).filter((f) => f.endsWith('.test.ts') && f.includes(filter)).sort();
if (files.length === 0) {
  console.error(`no test file in test/ has "${filter}" in its name`);
  process.exit(1);
}

await setupDevice();
(globalThis as any).UVU_DEFER = 1;
const uvu = await import('uvu');
let idx = 0;
for (const file of files) {
  (globalThis as any).UVU_INDEX = idx++;
  (globalThis as any).UVU_QUEUE.push([file]);
  await import(pathToFileURL(join(dir, file)).href);
}

// uvu writes its totals to stdout; capture them to print the line CI reads.
const write = process.stdout.write.bind(process.stdout);
let captured = '';
process.stdout.write = ((chunk: any, ...rest: any[]) => {
  captured += String(chunk);
  return write(chunk, ...rest);
}) as typeof process.stdout.write;
await uvu.exec(false);
process.stdout.write = write;
const plain = captured.replace(/\x1b\[[0-9;]*m/g, '');
const total = Number(/Total:\s+(\d+)/.exec(plain)?.[1] ?? 0);
const passed = Number(/Passed:\s+(\d+)/.exec(plain)?.[1] ?? 0);
const skipped = Number(/Skipped:\s+(\d+)/.exec(plain)?.[1] ?? 0);
const failed = total - passed - skipped;
if (Device.hasDefault) Device.default.destroy();
console.log(`\n${passed} passed, ${failed} failed`);
process.exit(failed > 0 || total === 0 || process.exitCode ? 1 : 0);
