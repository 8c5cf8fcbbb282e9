// Checkpoints from anywhere (src/vit/checkpoint.ts): fromPretrained from files in memory and from a URL
// (a local HTTP server), savePretrained into a custom writer, with the same model and the same
// messages as a folder on disk.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createServer, type Server } from 'node:http';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Tensor, tidy } from '../src/tensor.ts';
import { ViTForImageClassification } from '../src/vit/modeling.ts';
import { manualSeed } from '../src/nn/random.ts';
import { memoryFiles, type CheckpointWriter } from '../src/vit/checkpoint.ts';
import { randn, setupDevice } from './helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'vitcats-sources-'));
const config = { image_size: 8, patch_size: 4, hidden_size: 16, num_hidden_layers: 1, num_attention_heads: 2, intermediate_size: 24, num_labels: 3 };
const pixels = randn(2 * 3 * 8 * 8, 5);
const logits = (m: ViTForImageClassification) => tidy(async () => m.forward(Tensor.fromArray(pixels, [2, 3, 8, 8])).logits.toArray());

let server: Server | null = null;

test('fromPretrained: a folder, files in memory and a URL give the same model; savePretrained writes into any writer', async () => {
  await setupDevice();
  manualSeed(3);
  const model = new ViTForImageClassification(config).eval();
  const want = await logits(model);
  await model.savePretrained(join(dir, 'ckpt'));
  const files = new Map(readdirSync(join(dir, 'ckpt')).map((f) => [f, new Uint8Array(readFileSync(join(dir, 'ckpt', f)))] as const));
  assert.equal([...files.keys()].sort(), ['config.json', 'model.safetensors']);

  // the bytes savePretrained writes are pretrainedFiles()'s, config.json last
  const written: string[] = [];
  const writer: CheckpointWriter = { async write(f) { for (const [name, bytes] of f) { written.push(name); assert.equal(bytes, files.get(name)); } } };
  await model.savePretrained(writer);
  assert.equal(written, ['model.safetensors', 'config.json']);

  server = createServer((req, res) => {
    const bytes = files.get((req.url ?? '').replace(/^\/model\//, ''));
    res.writeHead(bytes ? 200 : 404).end(bytes);
  });
  await new Promise<void>((done) => server!.listen(0, '127.0.0.1', done));
  const port = (server.address() as { port: number }).port;
  for (const source of [join(dir, 'ckpt'), files, Object.fromEntries(files), `http://127.0.0.1:${port}/model`, new URL(`http://127.0.0.1:${port}/model/`)]) {
    const back = await ViTForImageClassification.fromPretrained(source);
    assert.equal(await logits(back), want, String(source instanceof Map ? 'Map' : source));
    back.dispose();
  }
  model.dispose();
});

test("fromPretrained: a missing or broken file is named in the source's own terms", async () => {
  const files = new Map([['config.json', new TextEncoder().encode('{"hidden_size": 16,')]]);
  await ViTForImageClassification.fromPretrained(memoryFiles(files, 'dropped files')).then(
    () => assert.unreachable('no model.safetensors'),
    (e: Error) => assert.match(e.message, /Checkpoint dropped files has no model\.safetensors \(looked for dropped files\/model\.safetensors\)/),
  );
  files.set('model.safetensors', new Uint8Array(16));
  await ViTForImageClassification.fromPretrained(memoryFiles(files, 'dropped files')).then(
    () => assert.unreachable('invalid JSON'),
    (e: Error) => assert.match(e.message, /^dropped files\/config\.json: invalid JSON/),
  );
  const port = (server!.address() as { port: number }).port;
  await ViTForImageClassification.fromPretrained(`http://127.0.0.1:${port}/nothing-here`).then(
    () => assert.unreachable('404'),
    (e: Error) => assert.match(e.message, /has no config\.json \(looked for http:\/\/127\.0\.0\.1:\d+\/nothing-here\/config\.json\)/),
  );
});

test.after(async () => {
  await new Promise((done) => (server ? server.close(done) : done(undefined)));
  rmSync(dir, { recursive: true, force: true });
});

test.run();
