// One sitting, raw numbers kept (`npm run bench:compare -- [flags]`): runs this checkout's benches, a
// baseline checkout's (e.g. the previous main, for a before/after), and TensorFlow.js's WebGPU peer
// (../shared/peers/tfjs, installed once into .cache/peer-tfjs) one after the other, alternating
// rounds so that drift on a shared machine hits every side alike, and writes every run's JSON line to
// bench/results/<date>-<name>.json. README tables cite that file.
//
// Flags: --name NAME (default "compare") --rounds N (default 2) --baseline DIR (a checkout with
// node_modules; its `npm run bench:vit` is run) --peer (run the tfjs peer too) --vit="FLAGS" (bench:vit
// flags for both sides, with `=`; default ViT-Ti/16 @224 batch 8) --kernels="FLAGS" (also run
// bench:kernels with these flags on this checkout and the baseline) --attention (also run bench/attention.ts,
// this checkout's harness, on each side's library) --no-vit (skip bench:vit) --out FILE.
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { flag, median } from './common.ts';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const name = flag(args, 'name') ?? 'compare';
const rounds = Number(flag(args, 'rounds') ?? 2);
const baseline = flag(args, 'baseline');
const withPeer = flag(args, 'peer') !== undefined;
const vitFlags = (flag(args, 'vit') ?? '').split(' ').filter(Boolean);
const kernelFlags = flag(args, 'kernels')?.split(' ').filter(Boolean) ?? null;
const withAttention = flag(args, 'attention') !== undefined;
const withVit = flag(args, 'no-vit') === undefined;
const date = new Date().toISOString().slice(0, 10);
const out = flag(args, 'out') ?? join(root, 'bench', 'results', `${date}-${name}.json`);

interface Run { side: string; bench: string; round: number; seconds: number; result: unknown }
const runs: Run[] = [];

/** Runs a command whose last stdout line is `JSON {...}` or a bare JSON object; returns that object. */
function runJson(side: string, bench: string, round: number, cmd: string, cmdArgs: string[], cwd: string): void {
  const t0 = performance.now();
  console.error(`[${side}] ${bench} round ${round}: ${cmd} ${cmdArgs.join(' ')}`);
  const stdout = execFileSync(cmd, cmdArgs, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 64 << 20 });
  const last = stdout.trim().split('\n').pop() ?? '';
  const result = JSON.parse(last.replace(/^JSON /, ''));
  runs.push({ side, bench, round, seconds: (performance.now() - t0) / 1000, result });
}

function peerDir(): string {
  const dir = join(root, '.cache', 'peer-tfjs');
  if (!existsSync(join(dir, 'node_modules'))) {
    const src = join(root, '..', 'shared', 'peers', 'tfjs');
    if (!existsSync(src)) throw new Error(`bench:compare --peer: no peer at ${src}`);
    mkdirSync(dir, { recursive: true });
    cpSync(src, dir, { recursive: true });
    execFileSync('npm', ['install', '--no-audit', '--no-fund'], { cwd: dir, stdio: 'inherit' });
  }
  return dir;
}

const sides: { side: string; dir: string }[] = [{ side: 'this', dir: root }];
if (baseline) sides.push({ side: 'baseline', dir: resolve(baseline) });
const peer = withPeer ? peerDir() : null;

for (let round = 1; round <= rounds; round++) {
  // alternate the order each round
  const order = round % 2 ? sides : [...sides].reverse();
  for (const { side, dir } of order) {
    if (withVit) runJson(side, 'vit', round, 'npm', ['run', '--silent', 'bench:vit', '--', ...vitFlags, '--json'], dir);
    if (withAttention) {
      runJson(side, 'attention', round, process.execPath,
        ['--conditions=vitcatsvdogs-source', '--import', 'tsx', 'bench/attention.ts', '--root', dir, '--json'], root);
    }
    if (kernelFlags) runJson(side, 'kernels', round, 'npm', ['run', '--silent', 'bench:kernels', '--', ...kernelFlags, '--json'], dir);
  }
  if (peer && withVit) {
    const img = vitFlags.includes('--image') ? ['--img', vitFlags[vitFlags.indexOf('--image') + 1]] : [];
    const patch = vitFlags.includes('--patch') ? ['--patch', vitFlags[vitFlags.indexOf('--patch') + 1]] : [];
    runJson('tfjs', 'vit', round, process.execPath, ['--import', './register-loader.mjs', 'bench_tfjs.mjs', '--skip-matmul', ...img, ...patch], peer);
  }
}

// medians per side of the headline numbers, next to the raw runs
// (the peer's numbers sit under "vit" in its JSON line)
const pick = (side: string, key: string) => runs.filter((r) => r.side === side && r.bench === 'vit')
  .map((r) => { const o = r.result as Record<string, any>; return (o.vit ?? o)[key]; }).filter((v): v is number => typeof v === 'number');
const summary: Record<string, Record<string, number | null>> = {};
for (const side of [...sides.map((s) => s.side), ...(peer ? ['tfjs'] : [])]) {
  const t = pick(side, 'train_img_s'), i = pick(side, 'infer_img_s');
  summary[side] = { train_img_s: t.length ? median(t) : null, infer_img_s: i.length ? median(i) : null, runs: t.length };
  // attention: the median over rounds of each shape's fwd+bwd ms
  const attention = runs.filter((r) => r.side === side && r.bench === 'attention').flatMap((r) => (r.result as { cases: { shape: string; ms: number }[] }).cases);
  for (const shape of new Set(attention.map((c) => c.shape))) {
    summary[side][`attention_ms ${shape}`] = median(attention.filter((c) => c.shape === shape).map((c) => c.ms));
  }
}
const commit = (dir: string) => {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: dir, encoding: 'utf8' }).trim();
  } catch {
    return null;
  }
};
const record = {
  date: new Date().toISOString(),
  machine: { cpu: cpus()[0]?.model ?? null, cores: cpus().length, memory_gib: Math.round(totalmem() / 2 ** 30) },
  sides: Object.fromEntries(sides.map(({ side, dir }) => [side, { dir, commit: commit(dir) }])),
  vit_flags: vitFlags, kernel_flags: kernelFlags, rounds, summary, runs,
};
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, `${JSON.stringify(record, null, 1)}\n`);
console.log(JSON.stringify(summary));
console.error(`wrote ${out}`);
