// The demo's static server (localhost only): the page and its bundle, the default checkpoint's three
// files under /checkpoint/, and for the browser tests the shared folder (goldens, photos) under /shared/.
import { createServer, type ServerResponse } from 'node:http';
import { readFile } from 'node:fs/promises';
import { extname, join, normalize, sep } from 'node:path';
import type { AddressInfo } from 'node:net';
import { WEB_DIR } from './build.ts';

export const CHECKPOINT_FILES = ['config.json', 'model.safetensors', 'preprocessor_config.json'];

export interface ServeOptions {
  /** where the bundle was built (app.js) */
  distDir: string;
  /** the checkpoint served as /checkpoint/<file>; null: none (the page then asks for files) */
  checkpointDir?: string | null;
  /** served as /shared/... (read-only material of the tests) */
  sharedDir?: string | null;
  port?: number;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.map': 'application/json', '.json': 'application/json',
  '.css': 'text/css', '.jpg': 'image/jpeg', '.png': 'image/png', '.safetensors': 'application/octet-stream',
};

/** `rel` inside `root`, or null when it would leave it. */
function inside(root: string, rel: string): string | null {
  const path = normalize(join(root, decodeURIComponent(rel)));
  return path.startsWith(root.endsWith(sep) ? root : root + sep) ? path : null;
}

async function send(res: ServerResponse, path: string | null): Promise<void> {
  const body = path ? await readFile(path).catch(() => null) : null;
  if (!body) {
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
    return;
  }
  res.writeHead(200, { 'content-type': TYPES[extname(path!)] ?? 'application/octet-stream', 'cache-control': 'no-store' }).end(body);
}

export async function startServer(o: ServeOptions): Promise<{ url: string; close: () => Promise<void> }> {
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const p = url.pathname;
    let file: string | null = null;
    if (p === '/' || p === '/index.html') file = join(WEB_DIR, 'index.html');
    else if (p === '/blank.html') {
      // an empty page of this origin, for the browser tests' own bundles
      res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><meta charset="utf-8"><title>blank</title>');
      return;
    }
    else if (p.startsWith('/checkpoint/')) {
      const name = p.slice('/checkpoint/'.length);
      file = o.checkpointDir && CHECKPOINT_FILES.includes(name) ? join(o.checkpointDir, name) : null;
    } else if (p.startsWith('/shared/')) file = o.sharedDir ? inside(o.sharedDir, p.slice('/shared/'.length)) : null;
    else file = inside(o.distDir, p.slice(1));
    send(res, file).catch((e) => res.writeHead(500).end(String(e)));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port ?? 0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}
