// Runs a command-line entry without driver noise. Dawn's native code prints two warnings about
// clamped limits straight to file descriptor 2 when it looks at the adapter, which JavaScript cannot
// silence; so the entry runs itself once more as a child whose stderr passes through a filter that
// drops exactly those lines. `--verbose` (or VITCATS_CLI_CHILD=1, the child itself) runs in-process.
import { spawn } from 'node:child_process';

const DAWN_NOISE = /Warning: maxDynamic(?:Uniform|Storage)BuffersPerPipelineLayout artificially reduced from \d+ to \d+ to fit dynamic offset allocation limit\.\r?\n/g;

/**
 * Runs `run` (returning an exit status) either here or, by default, in a filtered child of `entryFile`
 * (the script calling this); exits with its status.
 */
export async function runQuietly(entryFile: string, argv: string[], run: (argv: string[]) => Promise<number>): Promise<void> {
  if (process.env.VITCATS_CLI_CHILD === '1' || argv.includes('--verbose')) {
    if (process.env.VITCATS_STDERR_COLUMNS) {
      // the parent's stderr is a terminal: progress bars stay bars
      Object.assign(process.stderr, { isTTY: true, columns: Number(process.env.VITCATS_STDERR_COLUMNS) });
    }
    process.exit(await run(argv));
  }
  // A process group of its own: Ctrl-C reaches the child once, forwarded from here (not twice, which
  // the trainer takes as "quit without saving").
  const child = spawn(process.execPath, [...process.execArgv, entryFile, ...argv], {
    stdio: ['ignore', 'inherit', 'pipe'],
    detached: true,
    env: {
      ...process.env, VITCATS_CLI_CHILD: '1',
      ...(process.stderr.isTTY ? { VITCATS_STDERR_COLUMNS: String(process.stderr.columns ?? 80) } : {}),
    },
  });
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (text: string) => {
    const kept = text.replace(DAWN_NOISE, '');
    if (kept) process.stderr.write(kept);
  });
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => child.kill(signal));
  const status = await new Promise<number>((done) => {
    child.on('exit', (code, signal) => done(code ?? (signal === 'SIGINT' ? 130 : 1)));
  });
  process.exit(status);
}
