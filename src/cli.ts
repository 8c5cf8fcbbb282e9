// The command line (`vitcatsvdogs <command>`, `npm run catsvdogs -- <command>` in a checkout):
//
//   vitcatsvdogs [train] [--params FILE] [--FIELD VALUE ...] [--resume | --overwrite]
//   vitcatsvdogs predict --checkpoint DIR [--attention-map out.png] img.jpg ...
//   vitcatsvdogs eval --checkpoint DIR --data DIR [--batch-size N] [--workers N]
//   vitcatsvdogs help
//
// Exit status: 0 done, 1 failed (or the loss diverged), 2 bad arguments or parameters, 130 stopped
// by Ctrl-C (after saving a checkpoint).
import { writeFileSync } from 'node:fs';
import { extname } from 'node:path';
import { Device, autotune } from './node.ts';
import { loadParams, paramsHelp, ParamsError } from './train/params.ts';
import { DEMO_PARAMS } from './train/demo-params.ts';
import { parseFlags } from './train/flags.ts';
import { train, TrainerError, type TrainOptions } from './train/trainer.ts';
import { loadClassifier, predictImages, attentionOverlayPng, evaluateFolder, formatEvalReport, modelView } from './train/inference.ts';
import type { ProgressStream } from './train/progress.ts';
import { decodeFile } from './data/decode.ts';
import { DatasetError } from './data/layouts.ts';

const USAGE = `Usage: vitcatsvdogs <command> [options]   (in a checkout: npm run catsvdogs -- <command> [options])
  vitcatsvdogs [train] [--params FILE] [--FIELD VALUE ...] [--resume | --overwrite]
      Train a ViT (without --params: the built-in demo, generated cat and dog faces).
      --resume continues the run saved in out_dir; --overwrite replaces it. Ctrl-C saves and stops.
  vitcatsvdogs predict --checkpoint DIR [--attention-map OUT.png] [--crop-pct X] IMAGE ...
      Label and probability per image; with --attention-map, the image with the CLS attention
      rollout overlaid (OUT-1.png, OUT-2.png, ... for several images).
  vitcatsvdogs eval --checkpoint DIR --data DIR [--batch-size N] [--workers N] [--crop-pct X]
      Per-class counts, the confusion matrix and the accuracy on a labelled folder.
  vitcatsvdogs help
      This text, every training parameter and the model presets.
  DIR for --checkpoint: a checkpoint folder (config.json + model.safetensors) or a training out_dir
  (its best/ is used). Images are preprocessed as the checkpoint's preprocessor_config.json says
  (size, mean, std, crop_pct); --crop-pct X overrides its centre crop.
  Any command: --verbose prints the WebGPU adapter (and, run as vitcatsvdogs, the driver's own messages).`;

export interface CliIO {
  /** results and epoch lines (stdout) */
  out: (line: string) => void;
  /** messages and warnings (stderr) */
  err: (line: string) => void;
  /** progress bars (stderr); null for none */
  progress: ProgressStream | null;
}

export interface CliHooks {
  /** polled after each training step; without it, Ctrl-C (SIGINT) and SIGTERM stop the training */
  shouldStop?: () => boolean;
  onStep?: TrainOptions['onStep'];
}

class UsageError extends Error {}

/** The --name value flags of predict and eval (snake case keys) and their positional arguments. */
function commandFlags(argv: string[], known: string[]): { flags: Record<string, string>; positional: string[] } {
  const parsed = parseFlags(argv, (key) => (known.includes(key) ? { takes: 'value' } : null));
  const flags: Record<string, string> = {};
  for (const f of parsed.flags) {
    if (!f.known) throw new UsageError(`unknown option ${f.spelled} (expected ${known.map((k) => `--${k.replace(/_/g, '-')}`).join(', ')})`);
    if (f.value === undefined || f.value === '') throw new UsageError(`${f.spelled} expects a value`);
    flags[f.key] = f.value;
  }
  return { flags, positional: parsed.positional };
}

function positiveInt(flags: Record<string, string>, key: string): number | undefined {
  const v = flags[key];
  if (v === undefined) return undefined;
  const n = Number(v);
  const min = key === 'workers' ? 0 : 1;
  if (!Number.isInteger(n) || n < min) throw new UsageError(`--${key.replace(/_/g, '-')}: expected ${min ? 'a positive integer' : 'an integer >= 0'}, got ${JSON.stringify(v)}`);
  return n;
}

/** --crop-pct overrides the checkpoint's centre crop (preprocessor_config.json's crop_pct). */
function cropFlag(flags: Record<string, string>): number | undefined {
  const v = flags.crop_pct;
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
  const params = loadParams({ file: DEMO_PARAMS, argv: rest });
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
  const { flags, positional } = commandFlags(argv, ['checkpoint', 'attention_map', 'batch_size', 'crop_pct']);
  if (flags.checkpoint === undefined) throw new UsageError('predict needs --checkpoint DIR');
  if (positional.length === 0) throw new UsageError('predict needs at least one image file');
  const mapOut = flags.attention_map ?? null;
  const c = await loadClassifier(flags.checkpoint, { cropPct: cropFlag(flags) });
  try {
    if (c.note) io.err(c.note);
    const results = await predictImages(c, positional, { attention: mapOut !== null, batchSize: positiveInt(flags, 'batch_size') });
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
  const { flags, positional } = commandFlags(argv, ['checkpoint', 'data', 'batch_size', 'workers', 'crop_pct']);
  if (positional.length) throw new UsageError(`eval takes no positional arguments (got ${positional.join(' ')}); use --data DIR`);
  if (flags.checkpoint === undefined) throw new UsageError('eval needs --checkpoint DIR');
  if (flags.data === undefined) throw new UsageError('eval needs --data DIR');
  const c = await loadClassifier(flags.checkpoint, { cropPct: cropFlag(flags) });
  try {
    if (c.note) io.err(c.note);
    const r = await evaluateFolder(c, flags.data, { batchSize: positiveInt(flags, 'batch_size'), workers: positiveInt(flags, 'workers'), onWarning: io.err });
    io.out(`Checkpoint: ${c.dir} (labels: ${c.labels.join(', ')})`);
    io.out(`Data: ${r.root} (${r.layout}): ${r.total} images${r.skipped ? `, ${r.skipped} undecodable files skipped` : ''}`);
    io.out(formatEvalReport(r));
    return 0;
  } finally {
    c.model.dispose();
  }
}

/**
 * Ctrl-C and SIGTERM (kill, job schedulers) while training: the first finishes the step, saves
 * last/ and exits 130; before the first step there is nothing to save, so it quits at once, and a
 * second one always does. Returns the hooks for train() and a function that removes the handlers.
 */
function stopOnSignals(io: CliIO, onStep: CliHooks['onStep']): { hooks: CliHooks; remove: () => void } {
  let stopRequested = false, trained = false;
  const onSignal = () => {
    if (stopRequested || !trained) {
      io.err(trained ? '\nSecond Ctrl-C: quitting without saving.' : '\nCtrl-C: nothing trained yet; quitting.');
      process.exit(130);
    }
    stopRequested = true;
    io.err('\nCtrl-C: stopping after this step and saving a checkpoint (Ctrl-C again to quit at once).');
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    hooks: { shouldStop: () => stopRequested, onStep: (...a) => { trained = true; onStep?.(...a); } },
    remove: () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}

/**
 * Runs one command line (without the program name); returns the exit status. Creates (and
 * destroys) a device unless one exists. Without hooks.shouldStop, `train` stops on Ctrl-C.
 */
export async function main(argvIn: string[], ioIn: Partial<CliIO> = {}, hooks: CliHooks = {}): Promise<number> {
  const verbose = argvIn.includes('--verbose');
  const argv = argvIn.filter((a) => a !== '--verbose');
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
  const signals = command === 'train' && !hooks.shouldStop ? stopOnSignals(io, hooks.onStep) : null;
  try {
    if (!Device.hasDefault) {
      device = await Device.create();
      if (verbose) io.err(`WebGPU adapter: ${device.description}`);
      await autotune(device);
    }
    if (command === 'predict') return await runPredict(args, io);
    if (command === 'eval') return await runEval(args, io);
    return await runTrain(args, io, signals?.hooks ?? hooks);
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
    signals?.remove();
    device?.destroy();
  }
}
export { runQuietly } from './quiet.ts';
