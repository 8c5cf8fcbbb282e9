// Device's shader set-up: `#include` lines, errors that name the right file and line, and files that
// enable a feature the device lacks (skipped at creation, a clear error when dispatched).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Device } from '../src/gpu/device.ts';
import { nodePlatform } from '../src/gpu/platform-node.ts';

const base = `// shared helpers
fn twice(x: f32) -> f32 { return 2.0 * x; }
@group(0) @binding(1) var<storage, read_write> data: array<f32>;`;
const kernel = `@compute @workgroup_size(1) fn main() { data[0] = twice(data[0]); }`;

async function deviceWith(shaderSources: Record<string, string>, disableFeatures: string[] = []): Promise<Device> {
  const { gpu } = await nodePlatform();
  return Device.create({ platform: { gpu, shaderSources }, disableFeatures });
}

test('#include pulls in another file; errors after it name the including file and its own line', async () => {
  const ok = await deviceWith({ base, user: `// uses base\n#include "base.wgsl"\n${kernel}` });
  try {
    ok.pipeline('user', 'main'); // compiles: twice() and data come from base.wgsl
  } finally {
    ok.destroy();
  }
  try {
    const bad = await deviceWith({ base, user: `// uses base\n#include "base.wgsl"\n\nfn broken() -> f32 { return nope; }` });
    bad.destroy();
  } catch (e) {
    assert.match((e as Error).message, /shaders\/user\.wgsl:4:\d+: .*nope/);
    return;
  }
  assert.unreachable('expected a WGSL compilation error');
});

test('a file enabling a feature the device lacks is skipped, and dispatching it names the feature', async () => {
  const device = await deviceWith({ base, half: `enable f16;\n#include "base.wgsl"\n${kernel}` }, ['shader-f16']);
  try {
    assert.not.ok(device.features.has('shader-f16'));
    assert.throws(() => device.pipeline('half', 'main'), /shaders\/half\.wgsl needs the WebGPU feature 'shader-f16', which this device lacks/);
  } finally {
    device.destroy();
  }
});

test.run();
