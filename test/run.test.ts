// test/run.ts itself: its closing line and exit code, on temporary folders of fixture test files
// (VITCATS_TEST_DIR points it there), for all passing, a failure, a skip and a stray `.only`.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const runner = fileURLToPath(new URL('run.ts', import.meta.url));
// the fixtures live outside the repository, so they import uvu by its resolved URL (the runner's instance)
const uvuUrl = import.meta.resolve('uvu');

/** A fixture test file: `n` tests whose bodies are `body(i)` (a statement), declared with `declare(i)`. */
function fixture(n: number, body: (i: number) => string = () => '', declare: (i: number) => string = () => 'test'): string {
  const tests = Array.from({ length: n }, (_, i) => `${declare(i)}('case ${i}', () => { ${body(i)} });`);
  return [`import { test } from ${JSON.stringify(uvuUrl)};`, ...tests, 'test.run();', ''].join('\n');
}

/** Runs test/run.ts on a folder holding `files`; returns its closing line and exit code. */
async function runOn(files: Record<string, string>): Promise<{ last: string; code: number; output: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'vitcats-run-'));
  try {
    writeFileSync(join(dir, 'package.json'), '{ "type": "module" }\n'); // as the repository's: ES modules
    for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
    return await new Promise((resolve) => {
      execFile(process.execPath, ['--import', 'tsx', runner], { env: { ...process.env, VITCATS_TEST_DIR: dir } }, (err, stdout, stderr) => {
        const output = stdout + stderr;
        const last = stdout.trim().split('\n').pop() ?? '';
        resolve({ last, code: err ? (err.code as number) ?? 1 : 0, output });
      });
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('all passing: "N passed, 0 failed, 0 skipped", exit 0', async () => {
  const r = await runOn({ 'a.test.ts': fixture(3), 'b.test.ts': fixture(2) });
  assert.is(r.last, '5 passed, 0 failed, 0 skipped', r.output);
  assert.is(r.code, 0, r.output);
});

test('a failing test is counted and fails the run', async () => {
  const r = await runOn({ 'a.test.ts': fixture(4, (i) => (i === 2 ? "throw new Error('boom');" : '')) });
  assert.is(r.last, '3 passed, 1 failed, 0 skipped', r.output);
  assert.is(r.code, 1, r.output);
});

test('a skipped test is reported, a failure next to it still counts', async () => {
  const skip = (i: number) => (i === 0 ? 'test.skip' : 'test');
  const passing = await runOn({ 'a.test.ts': fixture(3, () => '', skip) });
  assert.is(passing.last, '2 passed, 0 failed, 1 skipped', passing.output);
  assert.is(passing.code, 0, passing.output);
  const failing = await runOn({ 'a.test.ts': fixture(9, (i) => (i === 8 ? "throw new Error('boom');" : ''), skip) });
  assert.is(failing.last, '7 passed, 1 failed, 1 skipped', failing.output);
  assert.is(failing.code, 1, failing.output);
});

test('a stray .only fails the run and names the test; the others count as skipped', async () => {
  const r = await runOn({ 'a.test.ts': fixture(10, () => '', (i) => (i === 4 ? 'test.only' : 'test')) });
  assert.is(r.last, '1 passed, 0 failed, 9 skipped', r.output);
  assert.is(r.code, 1, r.output);
  assert.match(r.output, /test\.only.*"case 4"/);
});

test('a test file that leaves a global setting changed fails the run and is named', async () => {
  const layernorm = new URL('../src/ops/layernorm.ts', import.meta.url).href;
  const leaky = `import { test } from ${JSON.stringify(uvuUrl)};
import { layerNormConfig } from ${JSON.stringify(layernorm)};
test('sets and forgets', () => { layerNormConfig.threadsPerRow = 16; });
test.run();
`;
  const r = await runOn({ 'a.test.ts': fixture(2), 'leaky.test.ts': leaky });
  assert.is(r.last, '3 passed, 0 failed, 0 skipped', r.output);
  assert.is(r.code, 1, r.output);
  assert.match(r.output, /leaky\.test\.ts: global settings changed from .*"threadsPerRow":null.* to .*"threadsPerRow":16/);
  assert.not.match(r.output, /a\.test\.ts: global settings/);
});

test.run();
