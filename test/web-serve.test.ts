// `npm run web` as a user runs it: examples/web/serve.ts bundles the demo, serves it on localhost and
// prints the URL, which answers with the page.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const serve = fileURLToPath(new URL('../examples/web/serve.ts', import.meta.url));

test('npm run web: builds, serves on localhost, prints the URL, and the URL serves the page', async () => {
  const child = spawn(process.execPath, ['--conditions=vitcatsvdogs-source', '--import', 'tsx', serve, '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    let out = '', err = '';
    child.stderr.on('data', (d) => { err += d; });
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no URL within 60 s; stdout: ${out}; stderr: ${err}`)), 60_000);
      child.stdout.on('data', (d) => {
        out += d;
        const m = /The web demo: (http:\/\/127\.0\.0\.1:\d+\/)/.exec(out);
        if (m) { clearTimeout(timer); resolve(m[1]); }
      });
      child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`serve exited ${code}: ${out} ${err}`)); });
    });
    const page = await fetch(url).then((r) => r.text());
    assert.match(page, /<title>ViTCatsVDogs in the browser<\/title>/);
    assert.match(out, /checkpoint/i); // names the default checkpoint or says there is none yet
  } finally {
    child.kill();
  }
});

test.run();
