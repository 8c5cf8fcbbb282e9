// The package as a user gets it: `npm pack`, the tarball installed into an empty project outside the
// repo, then plain `node` (no tsx) running the README's API example, a strict TypeScript consumer
// compiled against the shipped .d.ts, an esbuild browser bundle of the main entry with nothing
// unresolved, and the `vitcatsvdogs` command. Slow (a build and an install): about a minute.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
const work = mkdtempSync(join(tmpdir(), 'vitcats-package-'));
const project = join(work, 'consumer');
const bin = (name: string) => join(repo, 'node_modules', '.bin', name);

function run(cmd: string, args: string[], cwd: string): string {
  try {
    return execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, npm_config_loglevel: 'error' } });
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')} failed in ${cwd}:\n${err.stdout ?? ''}\n${err.stderr ?? err.message}`);
  }
}

const API_EXAMPLE = `
import { Device, Tensor, tidy, ViTConfig, ViTModel, ViTForImageClassification, AdamW } from 'vitcatsvdogs';
const device = await Device.create();
const model = new ViTForImageClassification(new ViTConfig({ image_size: 32, patch_size: 4, hidden_size: 64,
  num_hidden_layers: 2, num_attention_heads: 4, intermediate_size: 128, num_labels: 2 }));
const opt = new AdamW(model.parameters(), { lr: 1e-3, weightDecay: 0.01 });
const B = 2;
const pixels = Float32Array.from({ length: B * 3 * 32 * 32 }, (_, i) => Math.sin(i));
const labels = [0, 1];
const losses = [];
const before = Array.from(await model.classifier.weight.toArray());
for (let step = 0; step < 2; step++) {
  await tidy(async () => {
    const x = Tensor.fromArray(pixels, [B, 3, 32, 32]);
    const out = model.forward(x, { labels, outputAttentions: true, outputHiddenStates: true });
    out.loss.backward();
    opt.step(); opt.zeroGrad();
    losses.push(await out.loss.item());
  });
}
if (!losses.every(Number.isFinite)) throw new Error('loss not finite: ' + losses);
const after = await model.classifier.weight.toArray();
if (!before.some((v, i) => v !== after[i])) throw new Error('AdamW did not change the classifier weights');
if (!(new ViTModel(model.config) instanceof ViTModel)) throw new Error('ViTModel');
model.eval();
const logits = async (m) => tidy(async () => m.forward(Tensor.fromArray(pixels, [B, 3, 32, 32])).logits.toArray());
await model.savePretrained('ckpt');
const back = await ViTForImageClassification.fromPretrained('ckpt');
const a = await logits(model), b = await logits(back);
if (a.some((v, i) => v !== b[i])) throw new Error('reloaded logits differ');
console.log('api ok', losses.map((l) => l.toFixed(4)).join(' '));
device.destroy();
`;

const TS_CONSUMER = `
import { Device, Tensor, tidy, ViTConfig, ViTForImageClassification, AdamW, type ImageClassifierOutput } from 'vitcatsvdogs';
export async function step(model: ViTForImageClassification, opt: AdamW, x: Tensor, labels: number[]): Promise<number> {
  return tidy(async () => {
    const out: ImageClassifierOutput & { loss: Tensor } = model.forward(x, { labels });
    out.loss.backward();
    opt.step();
    return out.loss.item();
  });
}
export const config: ViTConfig = new ViTConfig({ image_size: 32, patch_size: 4, num_labels: 2 });
export const create: () => Promise<Device> = () => Device.create();
`;

test('npm pack: the tarball ships dist/ and no tests, results or bench output', () => {
  run('npm', ['pack', '--pack-destination', work, '--silent'], repo);
  const tarball = readdirSync(work).find((f) => f.endsWith('.tgz'));
  assert.ok(tarball, 'a tarball');
  const files = run('tar', ['-tzf', join(work, tarball!)], work).split('\n').filter(Boolean);
  assert.ok(files.includes('package/dist/node.js') && files.includes('package/dist/index.d.ts') && files.includes('package/dist/bin.js'));
  const stray = files.filter((f) => /^package\/(test|bench|examples|shaders|scripts)\/|\.png$/.test(f));
  assert.equal(stray, [], 'nothing but dist/, README and package.json');
  rmSync(project, { recursive: true, force: true });
  run('mkdir', ['-p', project], work);
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
  run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', join(work, tarball!)], project);
});

test('plain node runs the README API example from the installed package (forward, backward, AdamW, save, load)', () => {
  writeFileSync(join(project, 'api.mjs'), API_EXAMPLE);
  const out = run(process.execPath, ['api.mjs'], project);
  assert.match(out, /api ok/);
});

test('a strict TypeScript consumer compiles against the shipped .d.ts', () => {
  writeFileSync(join(project, 'consumer.ts'), TS_CONSUMER);
  writeFileSync(join(project, 'tsconfig.json'), JSON.stringify({
    compilerOptions: { strict: true, module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2022', noEmit: true, skipLibCheck: false, types: [] },
    files: ['consumer.ts'],
  }));
  run(bin('tsc'), ['-p', '.'], project);
});

test('esbuild bundles the main entry for the browser with no unresolved import', () => {
  writeFileSync(join(project, 'page.js'), "import { Device, ViTForImageClassification } from 'vitcatsvdogs';\nexport { Device, ViTForImageClassification };\n");
  run(bin('esbuild'), ['page.js', '--bundle', '--platform=browser', '--format=esm', '--outfile=page.bundle.js', '--log-level=error'], project);
});

test('npx vitcatsvdogs help prints the commands', () => {
  const out = run('npx', ['--no-install', 'vitcatsvdogs', 'help'], project);
  assert.match(out, /predict/);
  assert.match(out, /eval/);
});

test('the command starts quietly: no driver noise on stderr unless --verbose, which names the adapter', () => {
  // eval creates the device (and Dawn prints its limit warnings) before it finds the folder missing
  const args = ['--no-install', 'vitcatsvdogs', 'eval', '--checkpoint', 'ckpt', '--data', 'no-such-folder'];
  const quiet = spawnSync('npx', args, { cwd: project, encoding: 'utf8' });
  assert.is(quiet.status, 2, quiet.stderr);
  assert.match(quiet.stderr, /no-such-folder/);
  assert.not.match(quiet.stderr, /artificially reduced|WebGPU adapter/);
  const verbose = spawnSync('npx', [...args, '--verbose'], { cwd: project, encoding: 'utf8' });
  assert.match(verbose.stderr, /WebGPU adapter: /);
});

test.after(() => rmSync(work, { recursive: true, force: true }));

test.run();
