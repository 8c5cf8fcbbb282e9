// Device's shader handling: `#include` lines, errors that name the right file and line, files that
// enable a feature the device lacks (a clear error when used), and uniforms filled by field name.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Device, type Shader } from '../src/gpu/device.ts';
import { Tensor } from '../src/tensor.ts';
import { setupDevice } from './helpers.ts';

const base = `// shared helpers
fn twice(x: f32) -> f32 { return 2.0 * x; }
@group(0) @binding(1) var<storage, read_write> data: array<f32>;`;
const kernel = `@compute @workgroup_size(1) fn main() { data[0] = twice(data[0]); }`;
const shader = (name: string, code: string): Shader => ({ name, code, library: { base } });

test('#include pulls in another file; errors after it name the including file and its own line', async () => {
  const device = await setupDevice();
  const ok = shader('user', `// uses base\n#include "base.wgsl"\n${kernel}`);
  await device.compile(ok);
  device.pipeline(ok, 'main'); // compiles: twice() and data come from base.wgsl
  try {
    await device.compile(shader('broken', `// uses base\n#include "base.wgsl"\n\nfn broken() -> f32 { return nope; }`));
  } catch (e) {
    assert.match((e as Error).message, /shaders\/broken\.wgsl:4:\d+: .*nope/);
    return;
  }
  assert.unreachable('expected a WGSL compilation error');
});

test('a file enabling a feature the device lacks is skipped, and using it names the feature', async () => {
  const device = await Device.create({ disableFeatures: ['shader-f16'] });
  try {
    assert.not.ok(device.features.has('shader-f16'));
    const half = shader('half', `enable f16;\n#include "base.wgsl"\n${kernel}`);
    await device.compile(half); // skipped, not an error
    assert.throws(() => device.pipeline(half, 'main'), /shaders\/half\.wgsl needs the WebGPU feature 'shader-f16', which this device lacks/);
  } finally {
    device.destroy();
  }
});

const uniformKernel: Shader = {
  name: 'uniform_test',
  code: `struct Params {
  count: u32,   // a comment with, a comma
  shift: i32,
  scale: f32,
  offset: f32,
}
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(1) fn main() {
  out[0] = f32(params.count);
  out[1] = f32(params.shift);
  out[2] = params.scale;
  out[3] = params.offset;
}`,
};

test('uniforms are filled by field name; a field not given is 0; an unknown field or a bad u32 is an error naming it', async () => {
  const device = await setupDevice();
  const out = Tensor.empty([4]);
  device.dispatch({ shader: uniformKernel, entry: 'main', uniforms: { scale: 0.5, shift: -3, count: 7 }, bindings: [out.binding], workgroups: [1] });
  assert.equal(Array.from(await out.toArray()), [7, -3, 0.5, 0]);
  assert.throws(() => device.dispatch({ shader: uniformKernel, entry: 'main', uniforms: { count: 1, sclae: 2 }, bindings: [out.binding], workgroups: [1] }),
    /uniform_test:main: uniforms \{ count, sclae \} match no uniform struct of the shader \(it has: Params \{ count, shift, scale, offset \}\)/);
  assert.throws(() => device.dispatch({ shader: uniformKernel, entry: 'main', uniforms: { count: -1 }, bindings: [out.binding], workgroups: [1] }),
    /uniform_test:main: uniform count \(u32\) is -1/);
  out.dispose();
});

test('preparePipelines creates pipelines ahead (createComputePipelineAsync) that dispatches then reuse', async () => {
  const device = await setupDevice();
  const ahead: Shader = { ...uniformKernel, name: 'uniform_test_ahead' };
  const before = device.pipelineCount;
  await device.preparePipelines([{ shader: ahead, entry: 'main' }, { shader: ahead, entry: 'main' }]);
  assert.is(device.pipelineCount, before + 1);
  const made = device.pipeline(ahead, 'main');
  await device.preparePipelines([{ shader: ahead, entry: 'main' }]);
  assert.is(device.pipeline(ahead, 'main'), made);
  assert.is(device.pipelineCount, before + 1);
});

test.run();
