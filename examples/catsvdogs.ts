// The cats-vs-dogs trainer (`npm run catsvdogs -- ...`):
//
//   catsvdogs.ts [train] [--params examples/params.json] [--FIELD VALUE ...] [--resume | --overwrite]
//   catsvdogs.ts predict --checkpoint DIR [--attention-map out.png] img.jpg ...
//   catsvdogs.ts eval --checkpoint DIR --data DIR [--batch-size N] [--workers N]
//   catsvdogs.ts help
//
// Exit status: 0 done, 1 failed (or the loss diverged), 2 bad arguments or parameters, 130 stopped
// by Ctrl-C (after saving a checkpoint).
import '../src/node.ts'; // Node's platform (Dawn) and autotune cache
import { writeFileSync } from 'node:fs';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Device } from '../src/gpu/device.ts';
import { autotune } from '../src/ops/autotune.ts';
import { loadParams, paramsHelp, ParamsError } from '../src/train/params.ts';
import { train, TrainerError, type TrainOptions } from '../src/train/trainer.ts';
import { loadClassifier, predictImages, attentionOverlayPng, evaluateFolder, formatEvalReport, modelView } from '../src/train/inference.ts';
import type { ProgressStream } from '../src/train/progress.ts';
import { decodeFile } from '../src/data/decode.ts';
import { DatasetError } from '../src/data/layouts.ts';

export const DEFAULT_PARAMS = fileURLToPath(new URL('./params.json', import.meta.url));

const USAGE = `Usage:
  npm run catsvdogs -- [train] [--params FILE] [--FIELD VALUE ...] [--resume | --overwrite]
      Train a ViT (default params: examples/params.json, the built-in synthetic set).
      --resume continues the run saved in out_dir; --overwrite replaces it. Ctrl-C saves and stops.
  npm run catsvdogs -- predict --checkpoint DIR [--attention-map OUT.png] [--crop-pct X] IMAGE ...
      Label and probability per image; with --attention-map, the image with the CLS attention
      rollout overlaid (OUT-1.png, OUT-2.png, ... for several images).
  npm run catsvdogs -- eval --checkpoint DIR --data DIR [--batch-size N] [--workers N] [--crop-pct X]
      Per-class counts, the confusion matrix and the accuracy on a labelled folder.
  DIR for --checkpoint: a checkpoint folder (config.json + model.safetensors) or a training out_dir
  (its best/ is used). Images are preprocessed as the checkpoint's preprocessor_config.json says
  (size, mean, std, crop_pct); --crop-pct X overrides its centre crop.`;

export interface CliIO {
  /** results and epoch lines (stdout) */
  out: (line: string) => void;
  /** messages and warnings (stderr) */
  err: (line: string) => void;
  /** progress bars (stderr); null for none */
  progress: ProgressStream | null;
}

export interface CliHooks {
  shouldStop?: () => boolean;
  onStep?: TrainOptions['onStep'];
}

class UsageError extends Error {}

/** `--name value` / `--name=value` flags and positional arguments, for predict and eval. */
function parseFlags(argv: string[], known: Record<string, 'value' | 'switch'>): { flags: Record<string, string | true>; positional: string[] } {
  const flags: Record<string, string | true> = {};
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--') || a === '--') {
      positional.push(a);
      continue;
    }
    const eq = a.indexOf('=');
    const name = (eq >= 0 ? a.slice(2, eq) : a.slice(2)).replace(/_/g, '-');
    const kind = known[name];
    if (!kind) throw new UsageError(`unknown option --${name} (expected ${Object.keys(known).map((k) => `--${k}`).join(', ')})`);
    if (kind === 'switch') {
      flags[name] = true;
      continue;
    }
    const value = eq >= 0 ? a.slice(eq + 1) : argv[++i];
    if (value === undefined || value === '') throw new UsageError(`--${name} expects a value`);
    flags[name] = value;
  }
  return { flags, positional };
}

function positiveInt(flags: Record<string, string | true>, name: string): number | undefined {
  const v = flags[name];
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < (name === 'workers' ? 0 : 1)) throw new UsageError(`--${name}: expected ${name === 'workers' ? 'an integer >= 0' : 'a positive integer'}, got ${JSON.stringify(v)}`);
  return n;
}

/** --crop-pct overrides the checkpoint's centre crop (preprocessor_config.json's crop_pct). */
function cropFlag(flags: Record<string, string | true>): number | undefined {
  const v = flags['crop-pct'];
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!(n > 0 && n <= 1)) throw new UsageError(`--crop-pct: expected a number with 0 < x <= 1, got ${JSON.stringify(v)}`);
  return n;
}

async function runTrain(argv: string[], io: CliIO, hooks: CliHooks): Promise<number> {
  // --overwrite is the CLI's own switch; the rest are params fields.
  let overwrite = false;
  const rest = argv.filter((a) => {
    if (a === '--overwrite') return !(overwrite = true);
    if (a === '--no-overwrite') return false;
    return true;
  });
  const params = loadParams({ file: DEFAULT_PARAMS, argv: rest });
  const result = await train({
    params, overwrite, log: io.out, warn: io.err, progress: io.progress, shouldStop: hooks.shouldStop, onStep: hooks.onStep,
  });
  return result.status === 'completed' ? 0 : result.status === 'interrupted' ? 130 : 1;
}

function mapPath(out: string, index: number, count: number): string {
  if (count === 1) return out;
  const ext = extname(out) || '.png';
  return `${out.slice(0, out.length - extname(out).length)}-${index + 1}${ext}`;
}

async function runPredict(argv: string[], io: CliIO): Promise<number> {
  const { flags, positional } = parseFlags(argv, { checkpoint: 'value', 'attention-map': 'value', 'batch-size': 'value', 'crop-pct': 'value' });
  if (typeof flags.checkpoint !== 'string') throw new UsageError('predict needs --checkpoint DIR');
  if (positional.length === 0) throw new UsageError('predict needs at least one image file');
  const mapOut = typeof flags['attention-map'] === 'string' ? flags['attention-map'] : null;
  const c = await loadClassifier(flags.checkpoint, { cropPct: cropFlag(flags) });
  try {
    if (c.note) io.err(c.note);
    const results = await predictImages(c, positional, { attention: mapOut !== null, batchSize: positiveInt(flags, 'batch-size') });
    let failed = 0;
    results.forEach((r, i) => {
      if ('error' in r) {
        failed++;
        io.err(`${r.path}: cannot predict: ${r.error}`);
        return;
      }
      io.out(`${r.path}: ${r.label} ${r.probability.toFixed(4)}`);
      if (mapOut && r.attention) {
        const file = mapPath(mapOut, i, results.length);
        writeFileSync(file, attentionOverlayPng(modelView(decodeFile(r.path), c.preprocessing), r.attention.grid, r.attention.rows, r.attention.cols));
        io.err(`attention map of ${r.path}: ${file}`);
      }
    });
    return failed ? 1 : 0;
  } finally {
    c.model.dispose();
  }
}

async function runEval(argv: string[], io: CliIO): Promise<number> {
  const { flags, positional } = parseFlags(argv, { checkpoint: 'value', data: 'value', 'batch-size': 'value', workers: 'value', 'crop-pct': 'value' });
  if (positional.length) throw new UsageError(`eval takes no positional arguments (got ${positional.join(' ')}); use --data DIR`);
  if (typeof flags.checkpoint !== 'string') throw new UsageError('eval needs --checkpoint DIR');
  if (typeof flags.data !== 'string') throw new UsageError('eval needs --data DIR');
  const c = await loadClassifier(flags.checkpoint, { cropPct: cropFlag(flags) });
  try {
    if (c.note) io.err(c.note);
    const r = await evaluateFolder(c, flags.data, { batchSize: positiveInt(flags, 'batch-size'), workers: positiveInt(flags, 'workers'), onWarning: io.err });
    io.out(`Checkpoint: ${c.dir} (labels: ${c.labels.join(', ')})`);
    io.out(`Data: ${r.root} (${r.layout}): ${r.total} images${r.skipped ? `, ${r.skipped} undecodable files skipped` : ''}`);
    io.out(formatEvalReport(r));
    return 0;
  } finally {
    c.model.dispose();
  }
}

/** Runs one command line; returns the exit status. Creates (and destroys) a device unless one exists. */
export async function main(argv: string[], ioIn: Partial<CliIO> = {}, hooks: CliHooks = {}): Promise<number> {
  const io: CliIO = {
    out: ioIn.out ?? ((s) => console.log(s)),
    err: ioIn.err ?? ((s) => console.error(s)),
    progress: ioIn.progress === undefined ? process.stderr : ioIn.progress,
  };
  const commands = ['train', 'predict', 'eval', 'help'];
  const command = commands.includes(argv[0]) ? argv[0] : 'train';
  const args = commands.includes(argv[0]) ? argv.slice(1) : argv;
  if (command === 'help' || args.includes('--help') || args.includes('-h')) {
    io.out(USAGE);
    if (command === 'train' || command === 'help') io.out(`\n${paramsHelp()}`);
    return 0;
  }
  let device: Device | null = null;
  try {
    if (!Device.hasDefault) {
      device = await Device.create();
      await autotune(device);
    }
    if (command === 'predict') return await runPredict(args, io);
    if (command === 'eval') return await runEval(args, io);
    return await runTrain(args, io, hooks);
  } catch (e) {
    if (e instanceof ParamsError || e instanceof UsageError) {
      io.err(`error: ${e.message}`);
      if (e instanceof UsageError) io.err(USAGE);
      return 2;
    }
    if (e instanceof TrainerError || e instanceof DatasetError) {
      io.err(`error: ${e.message}`);
      return 2;
    }
    // Expected failures (no decodable images, an unreadable checkpoint) read best as one line.
    io.err(`error: ${process.env.VITCATS_DEBUG === '1' ? (e as Error).stack : (e as Error).message ?? String(e)}`);
    return 1;
  } finally {
    device?.destroy();
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  // First Ctrl-C: finish the step, save last/, exit 130. Before the first step there is nothing to
  // save, so it quits at once; a second Ctrl-C always does.
  let stopRequested = false, trained = false;
  const onSignal = () => {
    if (stopRequested || !trained) {
      console.error(trained ? '\nSecond Ctrl-C: quitting without saving.' : '\nCtrl-C: nothing trained yet; quitting.');
      process.exit(130);
    }
    stopRequested = true;
    console.error('\nCtrl-C: stopping after this step and saving a checkpoint (Ctrl-C again to quit at once).');
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal); // kill, job schedulers: same as Ctrl-C
  const code = await main(process.argv.slice(2), {}, { shouldStop: () => stopRequested, onStep: () => { trained = true; } });
  process.exit(code);
}
