// Bundles the web demo (and, for the browser tests, extra entries) with esbuild. The library's
// platform-neutral entry needs nothing from Node: checkpoints come from URLs or files in memory.
import { build } from 'esbuild';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const WEB_DIR = dirname(fileURLToPath(import.meta.url));
export const REPO_DIR = join(WEB_DIR, '..', '..');

/** Bundles `entries` (output name -> source file) into outdir as ES modules; throws with esbuild's messages. */
export async function buildWeb(outdir: string, entries: Record<string, string> = { app: join(WEB_DIR, 'main.ts') }): Promise<void> {
  await build({
    entryPoints: entries,
    outdir,
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    sourcemap: true,
    logLevel: 'warning',
  });
}
