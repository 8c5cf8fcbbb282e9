// Per-dispatch GPU timestamps (Device.setProfiling / takeTimings) as bench/ uses them.
import { test } from 'uvu';
import { wgsl } from '../src/gpu/wgsl.generated.ts';
import * as assert from 'uvu/assert';
import { setupDevice } from './helpers.ts';
import { Tensor, tidy } from '../src/tensor.ts';
import { add } from '../src/ops/elementwise.ts';

test('takeTimings: one entry per shader:entry (or label), counted per dispatch', async () => {
  const device = await setupDevice();
  if (!device.canTime) return; // adapters without timestamp-query cannot profile
  device.setProfiling(true);
  try {
    await device.takeTimings();
    await tidy(async () => {
      const a = Tensor.fromArray(new Float32Array(1000).fill(1), [1000]);
      const b = Tensor.fromArray(new Float32Array(1000).fill(2), [1000]);
      add(a, b);
      add(a, b);
      const out = Tensor.empty([1000]);
      device.dispatch({
        shader: wgsl.elementwise, entry: 'add', uniforms: { n: 1000 }, label: 'mine|elementwise:add',
        bindings: [a.binding, b.binding, out.binding], workgroups: device.grid(1000, 256),
      });
      assert.equal(Array.from((await out.toArray()).slice(0, 2)), [3, 3]);
    });
    const timings = await device.takeTimings();
    const byName = new Map(timings.map((t) => [t.name, t]));
    assert.is(byName.get('elementwise:add')?.count, 2);
    assert.is(byName.get('mine|elementwise:add')?.count, 1);
    for (const t of timings) assert.ok(t.ms >= 0 && Number.isFinite(t.ms), `${t.name}: ${t.ms} ms`);
    assert.equal(await device.takeTimings(), []); // cleared
  } finally {
    device.setProfiling(false);
  }
});

test.run();
