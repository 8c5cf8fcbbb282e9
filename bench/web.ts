// The web demo's numbers: training and inference images/s of the demo model and vit-micro-32 in
// Chromium's page (SwiftShader) against Node (lavapipe) on the same machine in the same sitting, and
// in the page the kernels of before SwiftShader had its own (matmul 'register', LayerNorm 16 threads
// per row) against its defaults ('subgroup4', 4 threads). Writes bench/results/<date>-web.json.
//   node scripts/embed-shaders.mjs && node --import tsx bench/web.ts [--steps 3]
import '../src/node.ts';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Device, autotune } from '../src/index.ts';
import { buildWeb, REPO_DIR } from '../examples/web/build.ts';
import { startServer } from '../examples/web/server.ts';
import { launchChromium } from '../examples/web/chromium.ts';
import { throughput, type ThroughputOptions } from './web-page.ts';

const args = process.argv.slice(2);
const stepsFlag = args.indexOf('--steps');
const steps = stepsFlag >= 0 ? Number(args[stepsFlag + 1]) : 3;

const models: (Omit<ThroughputOptions, 'steps'> & { name: string })[] = [
  { name: 'demo (vit-nano-32, 2 layers), batch 32', preset: 'vit-nano-32', layers: 2, batch: 32 },
  { name: 'vit-micro-32, batch 8', preset: 'vit-micro-32', batch: 8 },
];

const load = () => loadavg()[0];
const results: Record<string, unknown>[] = [];
const device = await Device.create();
await autotune(device);
const dist = join(tmpdir(), `vitcats-bench-web-${process.pid}`);
await buildWeb(dist, { bench: join(REPO_DIR, 'bench', 'web-page.ts') });
const server = await startServer({ distDir: dist });
const browser = await launchChromium();
try {
  const page = await browser.newPage();
  await page.goto(`${server.url}blank.html`);
  await page.addScriptTag({ url: '/bench.js', type: 'module' });
  await page.waitForFunction(() => 'throughput' in globalThis);
  for (const m of models) {
    const o = { ...m, steps };
    const runs: [string, () => Promise<unknown>][] = [
      ['node', () => throughput(o)],
      ['page', () => page.evaluate((opts) => (globalThis as any).throughput(opts), o)],
      // the kernels of before SwiftShader had its own: matmul 'register', LayerNorm 16 threads per row
      ['page before', () => page.evaluate((opts) => (globalThis as any).throughput({ ...opts, variant: 'register', layerNormThreads: 16 }), o)],
    ];
    for (const [where, run] of runs) {
      const loadBefore = load();
      const r = await run() as Record<string, unknown>;
      const row = { model: m.name, where, ...r, load_avg_1m: [loadBefore, load()] };
      console.log(JSON.stringify(row));
      results.push(row);
    }
  }
} finally {
  await browser.close();
  await server.close();
  device.destroy();
}
const date = new Date().toISOString().slice(0, 10);
mkdirSync(join(REPO_DIR, 'bench', 'results'), { recursive: true });
const file = join(REPO_DIR, 'bench', 'results', `${date}-web.json`);
writeFileSync(file, JSON.stringify({ date: new Date().toISOString(), cpus: cpus().length, steps, results }, null, 2) + '\n');
console.log(`wrote ${file}`);
