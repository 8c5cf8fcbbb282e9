// `npm run web`: bundles the demo and serves it on localhost, with the checkpoint `npm run catsvdogs`
// writes (the built-in demo's out_dir under the working directory, its best/ else last/) as the page's default model.
//   npm run web [-- --port 8080]
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { DEMO_PARAMS } from '../../src/train/demo-params.ts';
import { buildWeb, REPO_DIR } from './build.ts';
import { startServer } from './server.ts';

const args = process.argv.slice(2);
const portFlag = args.indexOf('--port');
const port = portFlag >= 0 ? Number(args[portFlag + 1]) : Number(process.env.PORT ?? 8080);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`--port must be a port number, got ${args[portFlag + 1] ?? process.env.PORT}`);
  process.exit(2);
}

// `npm run catsvdogs` runs in the package root, where the demo's relative out_dir lands
const outDir = resolve(REPO_DIR, DEMO_PARAMS.fields.out_dir as string);
const checkpointDir = ['best', 'last'].map((d) => join(outDir, d)).find((d) => existsSync(join(d, 'config.json'))) ?? null;

const distDir = join(REPO_DIR, '.cache', 'web-dist');
await buildWeb(distDir);
try {
  const { url } = await startServer({ distDir, checkpointDir, port });
  console.log(`The web demo: ${url}`);
  console.log(checkpointDir
    ? `Default checkpoint: ${checkpointDir}`
    : `No checkpoint in ${outDir} yet (run \`npm run catsvdogs\` first): the page asks for checkpoint files.`);
  console.log('Needs a browser with WebGPU (Chrome/Edge 113+). Ctrl+C stops the server.');
} catch (e) {
  const err = e as NodeJS.ErrnoException;
  console.error(err.code === 'EADDRINUSE' ? `port ${port} is in use: pick another with --port N` : err.message);
  process.exit(1);
}
