// Test entry: runs every test/*.test.ts with uvu in one process on one WebGPU device, then
// destroys it (Dawn keeps Node alive while a device exists) and prints "N passed, M failed, K skipped".
// A `test.only` left in a file fails the run (it silently skips every other test), and so does a
// file that leaves a global setting (layerNormConfig, matmulConfig, the device's) changed.
//   node --import tsx test/run.ts [substring filter]
// VITCATS_TEST_DIR runs the test files of another folder (test/run.test.ts uses it on fixtures).
import { readdirSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { dirname, join } from 'node:path';
import { Device } from '../src/gpu/device.ts';
import { layerNormConfig } from '../src/ops/layernorm.ts';
import { matmulConfig } from '../src/ops/matmul.ts';
import { kernelVariants } from '../src/ops/variants.ts';
import { scratchTextureConfig } from '../src/ops/scratch-textures.ts';
import { reduceConfig } from '../src/ops/reduce.ts';
import { setupDevice } from './helpers.ts';

const dir = process.env.VITCATS_TEST_DIR ?? dirname(fileURLToPath(import.meta.url));
const filter = process.argv[2] ?? '';
const files = readdirSync(dir).filter((f) => f.endsWith('.test.ts') && f.includes(filter)).sort();
if (files.length === 0) {
  console.error(`no test file in ${dir} has "${filter}" in its name`);
  process.exit(1);
}

await setupDevice();
(globalThis as any).UVU_DEFER = 1;
const uvu = await import('uvu');

// every test.only, by file and name
const onlys: string[] = [];
let current = '';
const only = uvu.test.only;
uvu.test.only = ((name: string, handler: any) => {
  onlys.push(`${current}: test.only("${name}")`);
  only(name, handler);
}) as typeof only;

type SuiteRun = () => Promise<[errors: string | true, passed: number, skipped: number, ran: number]>;
const queue = (globalThis as any).UVU_QUEUE as [string, ...SuiteRun[]][];
let idx = 0;
for (const file of files) {
  current = file;
  (globalThis as any).UVU_INDEX = idx++;
  queue.push([file]);
  await import(pathToFileURL(join(dir, file)).href);
}

/** The global settings a test may change but must restore (in `finally`), as text. */
function globalSettings(): string {
  const d = Device.hasDefault ? Device.default : null;
  return JSON.stringify({
    layerNormConfig, matmulConfig, scratchTextureConfig, reduceConfig, VITCATS_MATMUL_VARIANT: process.env.VITCATS_MATMUL_VARIANT ?? null,
    device: d && { variants: kernelVariants(d), debug: d.debug },
  });
}
const unrestored: string[] = [];

// Counted from each suite's own result (uvu's "Total" leaves skipped tests out, and a suite whose
// `before` hook throws reports no error at all): every test that ran and did not pass failed.
let passed = 0, failed = 0, skipped = 0;
for (const group of queue) {
  const file = group[0];
  for (let i = 1; i < group.length; i++) {
    const run = group[i] as SuiteRun;
    group[i] = async () => {
      const before = globalSettings();
      const result = await run();
      const [, ok, skip, ran] = result;
      passed += ok;
      failed += ran - ok;
      skipped += skip;
      const after = globalSettings();
      if (after !== before) unrestored.push(`${file}: global settings changed from ${before} to ${after}`);
      return result;
    };
  }
}
await uvu.exec(false);
if (Device.hasDefault) Device.default.destroy();
for (const u of unrestored) console.error(`\n${u} (restore them in finally)`);
if (onlys.length) console.error(`\n${onlys.length} test.only left in: ${onlys.join(', ')} (remove it: the other tests were skipped)`);
console.log(`\n${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed > 0 || onlys.length > 0 || unrestored.length > 0 || passed + failed === 0 || process.exitCode ? 1 : 0);
