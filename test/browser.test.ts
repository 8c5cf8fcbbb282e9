// The web demo in a real Chromium (Debian's, driven by playwright-core; scripts/setup-browser.sh installs
// it), on Chromium's own WebGPU adapter (SwiftShader): the golden case in the page, photo predictions
// equal to Node's `predict`, the train panel lowering the loss, and its download loading in Node.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { Tensor, ViTConfig, ViTForImageClassification, manualSeed, noGrad, parseSafetensors, tidy } from '../src/index.ts';
import { loadClassifier, predictImages } from '../src/train/inference.ts';
import { preprocessorConfig } from '../src/train/prediction.ts';
import { modelPreset } from '../src/vit/presets.ts';
import { syntheticSample } from '../src/data/synthetic-draw.ts';
import { decodeFile } from '../src/data/decode.ts';
import { PNG } from 'pngjs';
import { buildWeb, REPO_DIR } from '../examples/web/build.ts';
import { startServer } from '../examples/web/server.ts';
import { launchChromium } from '../examples/web/chromium.ts';
import { assertClose, SHARED } from './helpers.ts';
import { ATTENTION_CASE, MATMUL_CASES, testValues } from './browser-cases.ts';
import { matmulRef } from '../src/ref/matmul.ts';
import { ATTENTION_VARIANTS, MATMUL_VARIANTS } from '../src/ops/variants.ts';
import { attentionBackwardRef, attentionForwardRef } from '../src/ref/attention.ts';

const OUT = join(REPO_DIR, '.cache', 'browser-test');
const GOLDEN = join(SHARED, 'golden', 'vit-micro');
const FORWARD = { relL2: 1e-5, nmax: 2e-5 };
const GRAD = { relL2: 5e-5, nmax: 1e-4 };

let browser: Browser | null = null;
let server: Awaited<ReturnType<typeof startServer>> | null = null;
let page: Page;
const tmp = mkdtempSync(join(tmpdir(), 'vitcats-browser-'));
const checkpointDir = join(tmp, 'checkpoint');

/** The photos of the parity check: 8 cats and 8 dogs of the shared validation set. */
const jpegs = ['cats', 'dogs'].flatMap((c) => readdirSync(join(SHARED, 'data', 'catsdogs', 'val', c)).sort().slice(0, 8).map((f) => join(SHARED, 'data', 'catsdogs', 'val', c, f)));

test.before(async () => { try { await setUp(); } catch (e) { console.error(e); throw e; } });

/** PNGs for the browser's decoding path: an opaque face, and a non-square one with transparent and half-transparent parts. */
function writeTestPngs(): string[] {
  const out: string[] = [];
  for (const [i, W, H] of [[0, 96, 96], [1, 80, 60]] as const) {
    const { image } = syntheticSample(3, i, 1, W);
    const png = new PNG({ width: W, height: H });
    for (let y = 0; y < H; y++) {
      for (let x = 0; x < W; x++) {
        const p = y * W + x;
        for (let c = 0; c < 3; c++) png.data[4 * p + c] = image.data[3 * p + c];
        png.data[4 * p + 3] = i === 0 || x > 20 ? 255 : y < 30 ? 0 : 128;
      }
    }
    const path = join(tmp, `face-${i}.png`);
    writeFileSync(path, PNG.sync.write(png));
    out.push(path);
  }
  return out;
}

async function setUp() {
  // The page's default checkpoint: a small model with spread-out outputs (a wide init), a centre crop
  // and ImageNet mean/std, so that the parity check exercises every step of the preprocessing.
  manualSeed(5);
  const model = new ViTForImageClassification(new ViTConfig({
    ...modelPreset('vit-nano-32'), num_hidden_layers: 2, initializer_range: 0.3, num_labels: 2,
    id2label: { 0: 'cat', 1: 'dog' }, label2id: { cat: 0, dog: 1 },
  } as never));
  const pre = { imageSize: 32, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], cropPct: 0.875 } as const;
  await model.savePretrained(checkpointDir, { 'preprocessor_config.json': JSON.stringify(preprocessorConfig({ ...pre, mean: [...pre.mean], std: [...pre.std] })) });
  model.dispose();
  mkdirSync(OUT, { recursive: true });
  const dist = join(tmp, 'dist');
  await buildWeb(dist, { app: join(REPO_DIR, 'examples', 'web', 'main.ts'), golden: join(REPO_DIR, 'test', 'browser-page.ts') });
  server = await startServer({ distDir: dist, checkpointDir, sharedDir: SHARED });
  browser = await launchChromium();
  page = await browser.newPage({ acceptDownloads: true, viewport: { width: 1100, height: 900 } });
  page.on('pageerror', (e) => console.error(`page error: ${e.message}`));
  await page.goto(server.url);
  await page.waitForFunction(() => 'demo' in window);
  await page.evaluate(() => (window as any).demo.ready);
}

test.after(async () => {
  await browser?.close();
  await server?.close();
  rmSync(tmp, { recursive: true, force: true });
});

test('the page runs on WebGPU with the checkpoint it was served, and no error', async () => {
  const status = await page.textContent('#status');
  assert.match(status ?? '', /WebGPU adapter: .*swiftshader.*matmul kernels: subgroup4/i);
  assert.match((await page.textContent('#model-status')) ?? '', /\/checkpoint \(2 layers, hidden 64, 32 px, labels cat, dog\)/);
  assert.is(await page.textContent('#errors'), '');
});

test('errors in the page: a checkpoint that does not parse gets Node\'s message; no WebGPU says what to enable', async () => {
  const bad = join(tmp, 'bad');
  mkdirSync(bad);
  writeFileSync(join(bad, 'config.json'), '{"hidden_size": 64,');
  writeFileSync(join(bad, 'model.safetensors'), readFileSync(join(checkpointDir, 'model.safetensors')));
  const nodeMessage = await ViTForImageClassification.fromPretrained(bad).then(() => '', (e: Error) => e.message);
  assert.match(nodeMessage, /config\.json: invalid JSON/);
  await page.setInputFiles('#checkpoint-files', [join(bad, 'config.json'), join(bad, 'model.safetensors')]);
  await page.waitForFunction(() => document.getElementById('errors')!.textContent !== '');
  // the same message; only the JSON parser's own text may go on (Chromium's V8 adds the line and column)
  const expected = nodeMessage.replace(join(bad, 'config.json'), 'dropped files/config.json').replace(/\)$/, '');
  const shown = (await page.textContent('#errors')) ?? '';
  assert.ok(shown.startsWith(expected), `page: ${shown}\nNode: ${nodeMessage}`);
  assert.match((await page.textContent('#model-status')) ?? '', /^\/checkpoint /); // the served model stays
  await page.evaluate(() => { document.getElementById('errors')!.textContent = ''; });

  const p3 = await browser!.newPage();
  try {
    await p3.addInitScript(() => Object.defineProperty(navigator, 'gpu', { value: undefined }));
    await p3.goto(server!.url);
    await p3.waitForFunction(() => document.getElementById('errors')!.textContent !== '');
    assert.match((await p3.textContent('#errors')) ?? '', /no WebGPU.*chrome:\/\/flags\/#enable-unsafe-webgpu/);
  } finally {
    await p3.close();
  }
});

test('golden vit-micro in the page: forward, attentions and every gradient within the goldens\' tolerances', async () => {
  const p2 = await browser!.newPage();
  try {
    await p2.goto(`${server!.url}blank.html`);
    await p2.addScriptTag({ url: '/golden.js', type: 'module' });
    await p2.waitForFunction(() => 'golden' in window);
    const got = await p2.evaluate(() => (window as any).golden('/shared/golden/vit-micro')) as Record<string, number[]>;
    const io = parseSafetensors(new Uint8Array(readFileSync(join(GOLDEN, 'io.safetensors'))), 'vit-micro/io.safetensors').tensors;
    let compared = 0;
    for (const [name, values] of Object.entries(got)) {
      const want = io.get(name);
      if (!want) continue; // a golden without this output (e.g. attentions it did not store)
      if (name.endsWith('attention.attention.key.bias')) {
        // analytically zero: bounded by the query bias's gradient scale, as test/golden.test.ts
        const qb = io.get(name.replace('key.bias', 'query.bias'))!.data as Float32Array;
        const limit = 1e-5 * Math.max(...Array.from(qb, Math.abs));
        assert.ok(Math.max(...values.map(Math.abs)) <= limit, `${name} exceeds ${limit}`);
      } else {
        assertClose(`page ${name}`, values, want.data as Float32Array, name.startsWith('grad.') ? GRAD : FORWARD);
      }
      compared++;
    }
    const gradients = [...io.keys()].filter((k) => k.startsWith('grad.'));
    for (const g of gradients) assert.ok(g in got, `the page gave no ${g}`);
    assert.ok(compared >= gradients.length + 4, `only ${compared} outputs compared`);
  } finally {
    await p2.close();
  }
});

test('every matmul and attention variant is right on SwiftShader, and its autotune picks subgroup4', async () => {
  const p2 = await browser!.newPage();
  try {
    await p2.goto(`${server!.url}blank.html`);
    await p2.addScriptTag({ url: '/golden.js', type: 'module' });
    await p2.waitForFunction(() => 'variants' in window);
    const got = await p2.evaluate(() => (window as any).variants()) as {
      outputs: Record<string, number[]>; ran: Record<string, string>; autotune: { variant: string; ms: Record<string, number>; attention: string | null };
    };
    for (const variant of MATMUL_VARIANTS) {
      let seed = 1;
      for (const [M, K, N, batch] of MATMUL_CASES) {
        for (const transA of [false, true]) {
          for (const transB of [false, true]) {
            const a = testValues(batch * M * K, seed++), b = testValues(batch * K * N, seed++), bias = testValues(N, seed++);
            const name = `${variant} ${M}x${K}x${N}x${batch} ${transA} ${transB}`;
            assertClose(`page matmul ${name}`, got.outputs[name], matmulRef(a, b, { M, N, K, batch, transA, transB, bias }), { relL2: 1e-5, nmax: 1e-5 });
          }
        }
      }
    }
    const shape = { ...ATTENTION_CASE, scale: 1 / Math.sqrt(ATTENTION_CASE.headDim) };
    const n = shape.batch * shape.seq * shape.heads * shape.headDim;
    const [q, k, v, dC] = [1, 2, 3, 4].map((s) => testValues(n, s));
    const fwd = attentionForwardRef(q, k, v, shape), bwd = attentionBackwardRef(q, k, v, dC, shape);
    for (const variant of ATTENTION_VARIANTS) {
      // fused-texture needs 8-lane subgroups; SwiftShader's are 4 lanes, so today's path runs for it
      assert.ok(ATTENTION_VARIANTS.includes(got.ran[variant] as never), `attention ${variant} ran ${got.ran[variant]}`);
      assertClose(`page attention ${variant} context`, got.outputs[`attention ${variant} context`], fwd.context, { relL2: 1e-5, nmax: 1e-5 });
      for (const g of ['dq', 'dk', 'dv'] as const) {
        assertClose(`page attention ${variant} ${g}`, got.outputs[`attention ${variant} ${g}`], bwd[g], { relL2: 5e-5, nmax: 5e-5 });
      }
    }
    assert.is(got.ran['fused-tiles'], 'fused-tiles', 'the GPU tile kernel runs on SwiftShader');
    assert.is(got.autotune.variant, 'subgroup4', `autotune: ${JSON.stringify(got.autotune)}`);
    assert.ok(got.autotune.attention === 'unfused' || got.autotune.attention === 'fused-tiles', `attention autotune: ${got.autotune.attention}`);
  } finally {
    await p2.close();
  }
});

test('photos: the page\'s probabilities equal Node\'s predict within 1e-4 (JPEG and PNG); a non-image gets Node\'s message', async () => {
  const notImage = join(REPO_DIR, 'package.json');
  const photos = [...jpegs, ...writeTestPngs()];
  await page.setInputFiles('#photos', [...photos, notImage]);
  await page.waitForFunction((n) => (window as any).demo.state.predictions.length === n, photos.length + 1, { timeout: 120_000 });
  const got = await page.evaluate(() => (window as any).demo.state.predictions.map((p: any) => ({ name: p.name, probabilities: p.probabilities, error: p.error })));
  const classifier = await loadClassifier(checkpointDir);
  const want = await predictImages(classifier, [...photos, notImage]);
  classifier.model.dispose();
  const first = want[0] as { probabilities: number[] };
  let spread = 0;
  for (let i = 0; i < photos.length; i++) {
    const w = want[i];
    if (!('probabilities' in w)) throw new Error(`Node could not predict ${photos[i]}: ${w.error}`);
    assertClose(`probabilities of ${photos[i]}`, got[i].probabilities, w.probabilities, { relL2: 1e-4, nmax: 1e-4 });
    for (let k = 0; k < 2; k++) assert.ok(Math.abs(got[i].probabilities[k] - w.probabilities[k]) <= 1e-4);
    spread = Math.max(spread, Math.abs(w.probabilities[0] - first.probabilities[0]));
  }
  assert.ok(spread > 0.01, `the check needs predictions that differ between photos (spread ${spread})`);
  // the pixels themselves: the page's decoding equals decode.ts's, byte for byte (a JPEG, both PNGs)
  for (const path of [jpegs[0], ...photos.slice(-2)]) {
    const bytes = Array.from(readFileSync(path));
    const pagePixels = await page.evaluate(async (b) => {
      const img = await (window as any).demo.decodePhoto(Uint8Array.from(b), 'x');
      return { width: img.width, height: img.height, data: Array.from(img.data as Uint8Array) };
    }, bytes);
    const nodePixels = decodeFile(path);
    assert.equal([pagePixels.width, pagePixels.height], [nodePixels.width, nodePixels.height]);
    const differ = pagePixels.data.filter((v, i) => v !== nodePixels.data[i]).length;
    assert.is(differ, 0, `${path}: ${differ} bytes differ from decode.ts`);
  }
  const last = want[photos.length] as { error: string };
  assert.is(got[photos.length].error, last.error.replace(notImage, 'package.json'));
  assert.match(await page.textContent('#errors') ?? '', /cannot decode package\.json: not a JPEG or PNG file/);
  await page.evaluate(() => { document.getElementById('errors')!.textContent = ''; });
  const shot = join(OUT, 'predict.png');
  await page.locator('#predict').screenshot({ path: shot });
  assert.ok(readFileSync(shot).length > 10_000, 'the screenshot is written');
});

test('train panel: 30 steps lower the loss, epoch lines, and the download gives the same logits in Node', async () => {
  await page.fill('#epochs', '3');
  await page.fill('#per-class', '100');
  await page.fill('#batch', '16');
  await page.click('#train-button');
  await page.waitForFunction(() => (window as any).demo.state.training !== null, undefined, { timeout: 240_000 });
  const losses = await page.evaluate(() => (window as any).demo.state.training.losses as number[]);
  assert.is(losses.length, 30); // 80 training images per class at batch 16, 3 epochs
  const mean = (a: number[]) => a.reduce((x, y) => x + y, 0) / a.length;
  // (30 steps take the loss down from its start, not yet far: the model learns from ~100 steps on)
  assert.ok(mean(losses.slice(-5)) < mean(losses.slice(0, 5)) - 0.02, `loss ${mean(losses.slice(0, 5))} -> ${mean(losses.slice(-5))}`);
  const epochLoss = await page.evaluate(() => (window as any).demo.state.training.epochs.map((e: any) => e.loss) as number[]);
  assert.ok(epochLoss[2] < epochLoss[0], `epoch losses ${epochLoss}`);
  const log = (await page.textContent('#log')) ?? '';
  const lines = log.split('\n').filter((l) => l.startsWith('Epoch : '));
  assert.is(lines.length, 3);
  for (const l of lines) assert.match(l, /^Epoch : \d+ - loss : \d\.\d{4} - acc: \d\.\d{4} - val_loss : \d\.\d{4} - val_acc: \d\.\d{4}$/);
  assert.is(await page.getAttribute('#train-progress', 'value'), '30');
  // the three files, as a user downloads them
  const dir = join(tmp, 'downloaded');
  mkdirSync(dir);
  for (const name of ['config.json', 'model.safetensors', 'preprocessor_config.json']) {
    const [download] = await Promise.all([page.waitForEvent('download'), page.click(`#downloads a[download="${name}"]`)]);
    await download.saveAs(join(dir, name));
  }
  const n = 4;
  const x = Float32Array.from({ length: n * 3 * 32 * 32 }, (_, i) => Math.sin(i * 0.37));
  const pageLogits = await page.evaluate(async (input) => {
    const d = (window as any).demo;
    return Array.from(await d.logitsOf(d.state.training.classifier, Float32Array.from(input), 4)) as number[];
  }, Array.from(x));
  const model = await ViTForImageClassification.fromPretrained(dir);
  const logits = tidy(() => noGrad(() => model.forward(Tensor.fromArray(x, [n, 3, 32, 32])).logits));
  assertClose('logits of the downloaded checkpoint in Node', await logits.toArray(), pageLogits, FORWARD);
  logits.dispose();
  model.dispose();
  const c = await loadClassifier(dir);
  assert.equal(c.preprocessing, { imageSize: 32, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5], cropPct: 1 });
  assert.equal(c.labels, ['cat', 'dog']);
  c.model.dispose();
  writeFileSync(join(OUT, 'train-log.txt'), log);
});

// last: it takes the page's device
test('a lost device (the GPU process crashed) is shown in the page', async () => {
  const cdp = await browser!.newBrowserCDPSession();
  await cdp.send('Browser.crashGpuProcess');
  await page.waitForFunction(() => /device was lost/.test(document.getElementById('errors')!.textContent ?? ''), undefined, { timeout: 30_000 });
  assert.match((await page.textContent('#errors')) ?? '', /The WebGPU device was lost \(.*\)\. Reload the page/);
  await cdp.detach();
});

test.run();
