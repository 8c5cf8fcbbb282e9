// The default device's life cycle as users see it. Destroying the default device would break the
// tests after this one, so the script runs in a child process.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const index = new URL('../src/node.ts', import.meta.url).href;

test('after device.destroy(), using the default device says it was destroyed; a new one becomes the default', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vitcats-device-'));
  try {
    const script = join(dir, 'destroyed.mts');
    writeFileSync(script, `
      import { Device, Tensor, ViTForImageClassification } from ${JSON.stringify(index)};
      const messageOf = (fn: () => unknown) => { try { fn(); return 'no error'; } catch (e) { return (e as Error).message; } };
      const config = { image_size: 8, patch_size: 4, hidden_size: 8, num_hidden_layers: 1, num_attention_heads: 2, intermediate_size: 8, num_labels: 2 };
      const device = await Device.create();
      const model = new ViTForImageClassification(config);
      device.destroy();
      const out = {
        before: messageOf(() => Tensor.zeros([1])),
        forward: messageOf(() => model.forward(Tensor.zeros([1, 3, 8, 8]))),
        model: messageOf(() => new ViTForImageClassification(config)),
      };
      const again = await Device.create();
      out.again = Device.default === again ? 'default' : 'not default';
      again.destroy();
      console.log(JSON.stringify(out));
    `);
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', script]);
    const out = JSON.parse(stdout.trim().split('\n').pop()!);
    for (const key of ['before', 'forward', 'model']) {
      assert.match(out[key], /the default Device was destroyed \(device\.destroy\(\)\)/, `${key}: ${out[key]}`);
    }
    assert.is(out.again, 'default');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
