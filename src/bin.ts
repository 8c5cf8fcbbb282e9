#!/usr/bin/env node
// The `vitcatsvdogs` command (train, predict, eval, help; see src/cli.ts), quiet by default (src/quiet.ts).
import { fileURLToPath } from 'node:url';
import { runQuietly } from './quiet.ts';

await runQuietly(fileURLToPath(import.meta.url), process.argv.slice(2), async (argv) => (await import('./cli.ts')).main(argv));
