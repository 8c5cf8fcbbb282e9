#!/usr/bin/env node
// The `vitcatsvdogs` command (train, predict, eval, help; see src/cli.ts). Dawn's native code prints
// two warnings about clamped limits straight to file descriptor 2 when it looks at the adapter, which
// JavaScript cannot silence; so the command runs itself once more as a child whose stderr passes
// through a filter that drops exactly those lines. `--verbose` runs in this process, noise included,
// and prints the adapter's name.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const DAWN_NOISE = /Warning: maxDynamic(?:Uniform|Storage)BuffersPerPipelineLayout artificially reduced from \d+ to \d+ to fit dynamic offset allocation limit\.\r?\n/g;
const argv = process.argv.slice(2);
const verbose = argv.includes('--verbose');

if (process.env.VITCATS_CLI_CHILD === '1' || verbose) {
  if (process.env.VITCATS_CLI_CHILD === '1' && process.env.VITCATS_STDERR_COLUMNS) {
    // the parent's stderr is the terminal: progress bars stay bars
    Object.assign(process.stderr, { isTTY: true, columns: Number(process.env.VITCATS_STDERR_COLUMNS) });
  }
  const { main } = await import('./cli.ts');
  process.exitCode = await main(argv);
} else {
  const child = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), ...argv], {
    stdio: ['inherit', 'inherit', 'pipe'],
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
  // Ctrl-C reaches the child from the terminal (same process group); it saves and exits itself.
  process.on('SIGINT', () => {});
  process.on('SIGTERM', () => child.kill('SIGTERM'));
  child.on('exit', (code, signal) => {
    process.exitCode = code ?? (signal ? 128 + 9 : 1);
  });
}
