// Waiting for the GPU in Node. Dawn's bindings poll for finished work by rescheduling themselves with
// setImmediate, a busy loop that took a CPU core from lavapipe's threads; the Node platform
// (src/gpu/platform-node.ts) polls back to back only for the first millisecond of a wait, then on a timer.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { setupDevice, randn } from './helpers.ts';
import { dawnPolls } from '../src/gpu/platform-node.ts';
import { Tensor } from '../src/tensor.ts';
import { matmul } from '../src/ops/matmul.ts';
import { noGrad } from '../src/autograd.ts';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const polls = () => ({ ...dawnPolls });

test('a long wait for the GPU polls on a timer, not back to back', async () => {
  const device = await setupDevice();
  const n = 512;
  const a = Tensor.fromArray(randn(n * n, 1), [n, n], { device });
  const b = Tensor.fromArray(randn(n * n, 2), [n, n], { device });
  await device.sync();
  // enough products to keep lavapipe busy for tens of milliseconds at least
  let products = 4;
  for (;;) {
    const before = polls();
    const t0 = performance.now();
    noGrad(() => {
      for (let i = 0; i < products; i++) matmul(a, b).dispose();
    });
    await device.sync();
    const ms = performance.now() - t0;
    const immediate = dawnPolls.immediate - before.immediate;
    const timed = dawnPolls.timed - before.timed;
    if (ms < 30 && products < 256) { products *= 2; continue; }
    // back to back, a wait of `ms` polls thousands of times (each poll takes microseconds)
    assert.ok(timed > 0, `a ${ms.toFixed(0)} ms wait made no timed polls (${immediate} immediate)`);
    assert.ok(timed <= ms + 5, `${timed} timed polls in ${ms.toFixed(0)} ms: more than one per millisecond`);
    assert.ok(immediate < 200, `a ${ms.toFixed(0)} ms wait polled back to back ${immediate} times`);
    break;
  }
  a.dispose();
  b.dispose();
});

test('short waits are polled back to back, so they stay short', async () => {
  const device = await setupDevice();
  await device.sync();
  const before = polls();
  for (let i = 0; i < 50; i++) await device.sync();
  assert.ok(dawnPolls.immediate - before.immediate >= 50, 'each wait starts with an immediate poll');
  // only a wait that outlasts a millisecond goes on the timer (a busy host can stretch a few)
  assert.ok(dawnPolls.timed - before.timed < 25, `${dawnPolls.timed - before.timed} of 50 empty waits went on the timer`);
});

test("other setImmediate callbacks are not Dawn's polls: they run as before, and clearImmediate still works", async () => {
  await setupDevice();
  const before = polls();
  for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
  let ran = 0;
  await new Promise<void>((resolve) => setImmediate(function named() { ran++; resolve(); }));
  await new Promise<void>((resolve) => setImmediate(() => { ran++; resolve(); }));
  let cleared = false;
  clearImmediate(setImmediate(() => { cleared = true; }));
  await new Promise((resolve) => setImmediate(resolve));
  await new Promise((resolve) => setTimeout(resolve, 5));
  assert.is(ran, 2);
  assert.is(cleared, false, 'clearImmediate cancelled nothing');
  assert.equal(polls(), before, 'none of these counted as a poll');
});

test('on a device the platform was not told runs on a CPU (as on a GPU), the polls stay back to back', async () => {
  // a child process: this one's platform already knows of a CPU device
  const src = (path: string) => JSON.stringify(new URL(`../src/${path}`, import.meta.url).href);
  const script = `
    const { nodePlatform, dawnPolls } = await import(${src('gpu/platform-node.ts')});
    const { Device } = await import(${src('gpu/device.ts')});
    const { Tensor } = await import(${src('tensor.ts')});
    const { matmul } = await import(${src('ops/matmul.ts')});
    const { noGrad } = await import(${src('autograd.ts')});
    const platform = await nodePlatform();
    const device = await Device.create({ platform: { gpu: platform.gpu, keepAlive: platform.keepAlive } });
    const n = 512;
    const a = Tensor.fromArray(new Float32Array(n * n).fill(0.5), [n, n], { device });
    await device.sync();
    const before = { ...dawnPolls };
    const t0 = performance.now();
    noGrad(() => { for (let i = 0; i < 8; i++) matmul(a, a).dispose(); });
    await device.sync();
    const ms = performance.now() - t0;
    console.log(JSON.stringify({ ms, immediate: dawnPolls.immediate - before.immediate, timed: dawnPolls.timed - before.timed }));
    device.destroy();
  `;
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script]);
  const out = JSON.parse(stdout.trim().split('\n').pop()!);
  assert.ok(out.ms > 5, `the wait was too short to tell: ${stdout}`);
  assert.is(out.timed, 0, `timed polls without a CPU device: ${stdout}`);
  assert.ok(out.immediate > 20, `a ${out.ms.toFixed(0)} ms wait polled back to back only ${out.immediate} times`);
});

test.run();
