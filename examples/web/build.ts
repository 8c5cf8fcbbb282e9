// Bundles the web demo (and, for the browser tests, extra entries) with esbuild. The library's
// platform-neutral entry needs nothing from Node, except one leftover: ViTForImageClassification's
// fromPretrained/savePretrained import src/io/files-node.ts dynamically. Until they take a file store,
// that module is replaced here by one that says so (the page loads checkpoints from files it is given).
import { build, type Plugin } from 'esbuild';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const WEB_DIR = dirname(fileURLToPath(import.meta.url));
export const REPO_DIR = join(WEB_DIR, '..', '..');

const nodeFilesStub: Plugin = {
  name: 'files-node-stub',
  setup(b) {
    b.onResolve({ filter: /\/io\/files-node\.ts$/ }, (a) => ({ path: a.path, namespace: 'files-node-stub' }));
    b.onLoad({ filter: /.*/, namespace: 'files-node-stub' }, () => ({
      loader: 'js',
      contents: `const no = (name) => () => { throw new Error(name + ': reading and writing folders is Node only; in the page load the files (loadCheckpointFiles in examples/web/demo.ts)'); };
export const readCheckpointDir = no('fromPretrained'), writeCheckpointDir = no('savePretrained');`,
    }));
  },
};

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
    plugins: [nodeFilesStub],
  });
}
