// The --download path without a network: a local HTTP server on 127.0.0.1 (ephemeral port) serves a
// small ZIP built here (its own writer: stored, deflate and zip64 records, with independent CRC32s)
// holding PetImages/Cat/0.jpg and PetImages/Dog/0.jpg (jpeg-js), and misbehaves on demand.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { deflateRawSync } from 'node:zlib';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync, mkdirSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import jpeg from 'jpeg-js';
import { downloadPetImages, DownloadError, EXTRACTED_MARKER, type PetImagesOptions } from '../src/data/download.ts';
import { extractZip, readZipEntries, crc32, ZipError } from '../src/data/unzip.ts';

// ---------------------------------------------------------------------------------------------
// A tiny ZIP writer

function refCrc32(data: Uint8Array): number {
  let c = 0xffffffff;
  for (const byte of data) {
    c ^= byte;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1;
  }
  return (c ^ 0xffffffff) >>> 0;
}

interface ZipInput {
  name: string;
  data?: Uint8Array; // absent: a directory entry
  method?: 0 | 8 | 12;
  crc?: number; // override (to corrupt)
  size?: number; // the recorded uncompressed size, overridden (to corrupt)
  body?: Uint8Array; // the stored bytes, overridden (to corrupt)
  flags?: number;
}

function makeZip(inputs: ZipInput[], { zip64 = false } = {}): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const input of inputs) {
    const data = Buffer.from(input.data ?? new Uint8Array(0));
    const method = input.method ?? 0;
    const body = input.body ? Buffer.from(input.body) : method === 8 ? deflateRawSync(data) : data;
    const crc = input.crc ?? refCrc32(data);
    const size = input.size ?? data.length;
    const name = Buffer.from(input.name, 'utf8');
    const flags = 0x800 | (input.flags ?? 0);
    const version = zip64 ? 45 : 20;

    const localExtra = zip64 ? Buffer.alloc(20) : Buffer.alloc(0);
    if (zip64) {
      localExtra.writeUInt16LE(1, 0); localExtra.writeUInt16LE(16, 2);
      localExtra.writeBigUInt64LE(BigInt(size), 4); localExtra.writeBigUInt64LE(BigInt(body.length), 12);
    }
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0); local.writeUInt16LE(version, 4); local.writeUInt16LE(flags, 6);
    local.writeUInt16LE(method, 8); local.writeUInt16LE(0, 10); local.writeUInt16LE(0x21, 12);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(zip64 ? 0xffffffff : body.length, 18); local.writeUInt32LE(zip64 ? 0xffffffff : size, 22);
    local.writeUInt16LE(name.length, 26); local.writeUInt16LE(localExtra.length, 28);
    locals.push(local, name, localExtra, body);

    const centralExtra = zip64 ? Buffer.alloc(28) : Buffer.alloc(0);
    if (zip64) {
      centralExtra.writeUInt16LE(1, 0); centralExtra.writeUInt16LE(24, 2);
      centralExtra.writeBigUInt64LE(BigInt(size), 4); centralExtra.writeBigUInt64LE(BigInt(body.length), 12);
      centralExtra.writeBigUInt64LE(BigInt(offset), 20);
    }
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0); central.writeUInt16LE(0x0300 | version, 4); central.writeUInt16LE(version, 6);
    central.writeUInt16LE(flags, 8); central.writeUInt16LE(method, 10); central.writeUInt16LE(0, 12); central.writeUInt16LE(0x21, 14);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(zip64 ? 0xffffffff : body.length, 20); central.writeUInt32LE(zip64 ? 0xffffffff : size, 24);
    central.writeUInt16LE(name.length, 28); central.writeUInt16LE(centralExtra.length, 30);
    central.writeUInt32LE((input.data ? 0o100644 << 16 : (0o040755 << 16) | 0x10) >>> 0, 38);
    central.writeUInt32LE(zip64 ? 0xffffffff : offset, 42);
    centrals.push(central, name, centralExtra);
    offset += local.length + name.length + localExtra.length + body.length;
  }
  const cd = Buffer.concat(centrals);
  const tail: Buffer[] = [];
  if (zip64) {
    const rec = Buffer.alloc(56);
    rec.writeUInt32LE(0x06064b50, 0); rec.writeBigUInt64LE(44n, 4); rec.writeUInt16LE(45, 12); rec.writeUInt16LE(45, 14);
    rec.writeBigUInt64LE(BigInt(inputs.length), 24); rec.writeBigUInt64LE(BigInt(inputs.length), 32);
    rec.writeBigUInt64LE(BigInt(cd.length), 40); rec.writeBigUInt64LE(BigInt(offset), 48);
    const locator = Buffer.alloc(20);
    locator.writeUInt32LE(0x07064b50, 0); locator.writeBigUInt64LE(BigInt(offset + cd.length), 8); locator.writeUInt32LE(1, 16);
    tail.push(rec, locator);
  }
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0);
  eocd.writeUInt16LE(zip64 ? 0xffff : inputs.length, 8); eocd.writeUInt16LE(zip64 ? 0xffff : inputs.length, 10);
  eocd.writeUInt32LE(zip64 ? 0xffffffff : cd.length, 12); eocd.writeUInt32LE(zip64 ? 0xffffffff : offset, 16);
  return Buffer.concat([...locals, cd, ...tail, eocd]);
}

function tinyJpeg(r: number, g: number, b: number): Uint8Array {
  const w = 8, h = 6, data = new Uint8Array(w * h * 4);
  for (let i = 0; i < w * h; i++) data.set([r, g, b, 255], i * 4);
  return jpeg.encode({ data, width: w, height: h }, 90).data;
}

function noise(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) { s = (s * 1664525 + 1013904223) >>> 0; out[i] = s >>> 24; }
  return out;
}

const CAT = tinyJpeg(200, 120, 40);
const DOG = tinyJpeg(40, 90, 200);
const README = new TextEncoder().encode('Kaggle cats and dogs, test copy\n'.repeat(20));
const FILLER = noise(200_000, 7); // incompressible, so the archive is big enough to cut in half

const petEntries = (): ZipInput[] => [
  { name: 'PetImages/' },
  { name: 'PetImages/Cat/' },
  { name: 'PetImages/Cat/0.jpg', data: CAT, method: 8 },
  { name: 'PetImages/Dog/0.jpg', data: DOG, method: 0 },
  { name: 'PetImages/Dog/Thumbs.db', data: FILLER, method: 0 },
  { name: 'readme[1].txt', data: README, method: 8 },
];
const ZIP = makeZip(petEntries());

// ---------------------------------------------------------------------------------------------
// A local server

const MAX_REQUESTS = 20; // every test makes a handful; more means a loop

interface Seen { path: string; range?: string }
type Handler = (req: http.IncomingMessage, res: http.ServerResponse, n: number) => void;

async function withServer(handler: Handler, body: (base: string, seen: Seen[]) => Promise<void>): Promise<void> {
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    seen.push({ path: req.url ?? '', range: req.headers.range });
    if (seen.length > MAX_REQUESTS) { res.writeHead(503).end(); return; }
    handler(req, res, seen.length);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  try {
    await body(`http://127.0.0.1:${port}`, seen);
  } finally {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
  assert.ok(seen.length <= MAX_REQUESTS, 'request loop');
}

/**
 * Serves `data`; honours `Range: bytes=N-` unless told not to; can cut the connection after `cutAt` bytes.
 * The cut waits until `cutAt` bytes are in `partFile` (bounded): data and the close arriving together
 * would otherwise let the client drop the bytes it had not read yet, and the test would not be deterministic.
 */
function serve(req: http.IncomingMessage, res: http.ServerResponse, data: Buffer,
  o: { range?: boolean; cutAt?: number; partFile?: string; chunked?: boolean } = {}) {
  const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
  let start = 0;
  if (m && o.range !== false) {
    start = Number(m[1]);
    res.writeHead(206, { 'content-length': data.length - start, 'content-range': `bytes ${start}-${data.length - 1}/${data.length}` });
  } else {
    res.writeHead(200, o.chunked ? {} : { 'content-length': data.length });
  }
  const rest = data.subarray(start);
  if (o.cutAt !== undefined) {
    const cutAt = o.cutAt, partFile = o.partFile;
    res.write(rest.subarray(0, cutAt), async () => {
      for (let i = 0; i < 500 && partFile && (existsSync(partFile) ? statSync(partFile).size : 0) < cutAt; i++) await sleep(10);
      res.socket?.destroy();
    });
  } else {
    res.end(rest);
  }
}

// ---------------------------------------------------------------------------------------------
// Helpers

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'vit-download-'));
}

class Capture extends Writable {
  text = '';
  constructor(readonly isTTY: boolean) { super(); }
  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void) { this.text += chunk.toString(); done(); }
}

/** Options for a test run; `url` is required so that no test can reach the real default URL. */
const quiet = (extra: PetImagesOptions & { url: string }): PetImagesOptions =>
  ({ progress: false, retries: 0, retryDelayMs: 0, timeoutMs: 5000, expectedBytes: ZIP.length, ...extra });

function assertExtracted(dir: string) {
  const pets = join(dir, 'PetImages');
  assert.equal(readFileSync(join(pets, 'Cat', '0.jpg')), Buffer.from(CAT));
  assert.equal(readFileSync(join(pets, 'Dog', '0.jpg')), Buffer.from(DOG));
  assert.equal(readFileSync(join(dir, 'readme[1].txt')), Buffer.from(README));
  assert.ok(existsSync(join(dir, EXTRACTED_MARKER)), 'marker written');
  assert.ok(!readdirSync(dir).some((n) => n.startsWith('.extract-') || n.endsWith('.part')), 'no staging or .part left');
}

async function rejects(p: Promise<unknown>, pattern: RegExp, kind?: Function): Promise<Error> {
  try {
    await p;
  } catch (err) {
    if (kind) assert.instance(err, kind);
    assert.match((err as Error).message, pattern);
    return err as Error;
  }
  assert.unreachable(`expected a rejection matching ${pattern}`);
  throw new Error('unreachable');
}

// ---------------------------------------------------------------------------------------------
// The ZIP reader

test('crc32 matches the standard check value and the test writer', () => {
  assert.is(crc32(new TextEncoder().encode('123456789')), 0xcbf43926);
  assert.is(crc32(FILLER), refCrc32(FILLER));
  assert.is(crc32(FILLER.subarray(1000), crc32(FILLER.subarray(0, 1000))), refCrc32(FILLER));
});

for (const variant of [{ zip64: false, chunkSize: undefined }, { zip64: true, chunkSize: undefined }, { zip64: false, chunkSize: 7 }]) {
  test(`extractZip: stored + deflate, directories skipped (zip64 ${variant.zip64}, ${variant.chunkSize ? `${variant.chunkSize}-byte chunks` : 'default chunks'})`, async () => {
    const dir = tempDir();
    try {
      const zipPath = join(dir, 'a.zip');
      writeFileSync(zipPath, makeZip([...petEntries(), { name: 'empty.txt', data: new Uint8Array(0), method: 0 }], { zip64: variant.zip64 }));
      const entries = await readZipEntries(zipPath);
      assert.is(entries.length, 7);
      assert.is(entries.filter((e) => e.isDirectory).length, 2);
      const out = join(dir, 'out');
      const res = await extractZip(zipPath, out, { chunkSize: variant.chunkSize });
      assert.is(res.files, 5);
      assert.is(res.bytes, CAT.length + DOG.length + FILLER.length + README.length);
      assert.equal(readFileSync(join(out, 'PetImages/Cat/0.jpg')), Buffer.from(CAT));
      assert.equal(readFileSync(join(out, 'PetImages/Dog/Thumbs.db')), Buffer.from(FILLER));
      assert.is(statSync(join(out, 'empty.txt')).size, 0);
      const decoded = jpeg.decode(readFileSync(join(out, 'PetImages/Dog/0.jpg')));
      assert.is(decoded.width, 8);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

for (const chunkSize of [undefined, 7]) {
  test(`extractZip rejects a CRC mismatch (${chunkSize ? `${chunkSize}-byte chunks` : 'default chunks'}, stored and deflate)`, async () => {
    const dir = tempDir();
    try {
      for (const method of [0, 8] as const) {
        const zipPath = join(dir, `crc${method}.zip`);
        writeFileSync(zipPath, makeZip([{ name: 'PetImages/Cat/0.jpg', data: CAT, method, crc: (refCrc32(CAT) ^ 1) >>> 0 }]));
        await rejects(extractZip(zipPath, join(dir, 'out'), { chunkSize }), /CRC32 mismatch.*PetImages\/Cat\/0\.jpg|PetImages\/Cat\/0\.jpg.*CRC32 mismatch/, ZipError);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

test('extractZip rejects data longer or shorter than recorded, and a broken deflate stream', async () => {
  const dir = tempDir();
  try {
    const zipPath = join(dir, 'x.zip');
    const cases: [ZipInput, RegExp][] = [
      // A "zip bomb" in miniature: 200 kB of data recorded as 1 kB stops at 1 kB, in either method.
      [{ name: 'big.bin', data: FILLER, method: 8, size: 1000 }, /size mismatch: more than 1000 bytes/],
      [{ name: 'big.bin', data: FILLER, method: 0, size: 1000 }, /stored entry with different compressed and uncompressed sizes/],
      [{ name: 'short.bin', data: README, method: 8, size: README.length + 5 }, /size mismatch: got 640 bytes, the directory says 645/],
      [{ name: 'cut.bin', data: FILLER, method: 8, body: deflateRawSync(FILLER).subarray(0, 50_000) }, /cannot inflate/],
    ];
    for (const [input, pattern] of cases) {
      writeFileSync(zipPath, makeZip([input]));
      for (const chunkSize of [undefined, 4096]) await rejects(extractZip(zipPath, join(dir, 'o'), { chunkSize }), pattern, ZipError);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('extractZip rejects path traversal and absolute names before writing anything', async () => {
  const dir = tempDir();
  try {
    for (const bad of ['../evil.txt', 'PetImages/../../evil.txt', '/tmp/evil.txt', 'C:\\evil.txt', 'C:/evil.txt', '..\\evil.txt', 'PetImages\\..\\..\\evil.txt']) {
      const zipPath = join(dir, 'bad.zip');
      // The good entry comes first: a reader that checked lazily would already have written it.
      writeFileSync(zipPath, makeZip([{ name: 'PetImages/Cat/0.jpg', data: CAT, method: 8 }, { name: bad, data: README, method: 0 }]));
      const out = join(dir, 'sub', 'out');
      await rejects(extractZip(zipPath, out), /unsafe path/, ZipError);
      assert.not.ok(existsSync(out), `nothing written for ${bad}`);
      assert.not.ok(existsSync(join(dir, 'evil.txt')) || existsSync(join(dir, 'sub', 'evil.txt')), `no escape for ${bad}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('extractZip rejects unsupported methods, encryption and non-ZIP files clearly', async () => {
  const dir = tempDir();
  try {
    const zipPath = join(dir, 'x.zip');
    writeFileSync(zipPath, makeZip([{ name: 'a.bin', data: CAT, method: 12 }]));
    await rejects(extractZip(zipPath, join(dir, 'o')), /unsupported compression method 12/, ZipError);
    writeFileSync(zipPath, makeZip([{ name: 'a.bin', data: CAT, flags: 1 }]));
    await rejects(extractZip(zipPath, join(dir, 'o')), /encrypted/, ZipError);
    writeFileSync(zipPath, ZIP.subarray(0, ZIP.length >> 1));
    await rejects(extractZip(zipPath, join(dir, 'o')), /not a ZIP archive/, ZipError);
    writeFileSync(zipPath, 'hello');
    await rejects(extractZip(zipPath, join(dir, 'o')), /not a ZIP archive/, ZipError);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// ---------------------------------------------------------------------------------------------
// Downloading

test('download + extract, progress lines, then skipped when already extracted; a partial folder is redone', async () => {
  const dir = tempDir();
  try {
    await withServer((req, res) => serve(req, res, ZIP), async (base, seen) => {
      const log = new Capture(false);
      const url = `${base}/kagglecatsanddogs.zip`;
      const r = await downloadPetImages(dir, quiet({ url, progress: true, progressStream: log }));
      assert.is(r.dataDir, join(dir, 'PetImages'));
      assert.ok(r.downloaded && r.extracted);
      assert.is(seen.length, 1);
      assert.is(seen[0].range, undefined);
      assertExtracted(dir);
      assert.equal(readFileSync(join(dir, 'kagglecatsanddogs.zip')), ZIP, 'archive kept under the URL name');
      assert.match(log.text, /Downloading kagglecatsanddogs\.zip: 100\.0% .*MB\/s.*ETA/);
      assert.match(log.text, /Extracting kagglecatsanddogs\.zip: 4\/4 files/);
      assert.not.match(log.text, /\r/);

      // Second call: the marker says done; no request.
      const again = await downloadPetImages(dir, quiet({ url }));
      assert.ok(!again.downloaded && !again.extracted);
      assert.is(seen.length, 1);

      // A partially extracted folder (no marker) is extracted again from the kept archive.
      unlinkSync(join(dir, EXTRACTED_MARKER));
      unlinkSync(join(dir, 'PetImages', 'Dog', '0.jpg'));
      mkdirSync(join(dir, '.extract-999-dead'), { recursive: true }); // a crashed run's staging folder
      const redo = await downloadPetImages(dir, quiet({ url }));
      assert.ok(!redo.downloaded && redo.extracted);
      assert.is(seen.length, 1);
      assertExtracted(dir);
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an interrupted download resumes with Range on the next run (206, appended)', async () => {
  const dir = tempDir();
  const half = ZIP.length >> 1;
  try {
    const partFile = join(dir, 'pets.zip.part');
    await withServer((req, res, n) => serve(req, res, ZIP, n === 1 ? { cutAt: half, partFile } : {}), async (base, seen) => {
      const url = `${base}/pets.zip`;
      const err = await rejects(downloadPetImages(dir, quiet({ url })), /pets\.zip/, DownloadError);
      assert.match(err.message, /Network error|closed after/);
      const have = statSync(partFile).size;
      assert.is(have, half, 'partial file has what was sent');
      assert.not.ok(existsSync(join(dir, 'pets.zip')), 'no final file after a failed download');
      assert.not.ok(existsSync(join(dir, 'PetImages')));

      const r = await downloadPetImages(dir, quiet({ url }));
      assert.ok(r.downloaded);
      assert.is(seen.length, 2);
      assert.is(seen[1].range, `bytes=${have}-`);
      assert.equal(readFileSync(join(dir, 'pets.zip')), ZIP);
      assertExtracted(dir);
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a network failure mid-download is retried within the run, resuming', async () => {
  const dir = tempDir();
  try {
    const partFile = join(dir, 'pets.zip.part');
    await withServer((req, res, n) => serve(req, res, ZIP, n === 1 ? { cutAt: 70_000, partFile } : {}), async (base, seen) => {
      const log = new Capture(false);
      await downloadPetImages(dir, quiet({ url: `${base}/pets.zip`, retries: 2, progress: true, progressStream: log }));
      assert.is(seen.length, 2);
      assert.is(seen[1].range, 'bytes=70000-');
      assert.match(log.text, /retrying in 0\.0 s \(retry 1 of 2\), resuming at/);
      assertExtracted(dir);
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a server that ignores Range (200) restarts from zero', async () => {
  const dir = tempDir();
  try {
    writeFileSync(join(dir, 'pets.zip.part'), noise(5000, 3)); // garbage that must not survive
    await withServer((req, res) => serve(req, res, ZIP, { range: false }), async (base, seen) => {
      await downloadPetImages(dir, quiet({ url: `${base}/pets.zip` }));
      assert.is(seen.length, 1);
      assert.is(seen[0].range, 'bytes=5000-');
      assert.equal(readFileSync(join(dir, 'pets.zip')), ZIP);
      assertExtracted(dir);
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a size mismatch is an error and leaves no final file (Content-Length, and final size)', async () => {
  const dir = tempDir();
  try {
    await withServer((req, res) => serve(req, res, ZIP, { chunked: req.url === '/chunked.zip' }), async (base) => {
      // Content-Length disagrees: refused before writing.
      await rejects(downloadPetImages(dir, quiet({ url: `${base}/pets.zip`, expectedBytes: ZIP.length + 10 })),
        new RegExp(`Size check failed.*server reports ${ZIP.length} bytes, expected ${ZIP.length + 10}`), DownloadError);
      // No Content-Length (chunked): the finished file's size is checked.
      await rejects(downloadPetImages(dir, quiet({ url: `${base}/chunked.zip`, expectedBytes: ZIP.length - 1 })),
        new RegExp(`Size check failed.*downloaded ${ZIP.length} bytes, expected ${ZIP.length - 1}`), DownloadError);
      assert.equal(readdirSync(dir), [], 'no archive, no .part, no PetImages');
      // With the right size, the chunked response is fine.
      await downloadPetImages(dir, quiet({ url: `${base}/chunked.zip` }));
      assertExtracted(dir);
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('HTTP 404 and a refused connection are clear errors naming the URL (404 is not retried)', async () => {
  const dir = tempDir();
  try {
    await withServer((_req, res) => res.writeHead(404, 'Not Found').end('nope'), async (base, seen) => {
      const err = await rejects(downloadPetImages(dir, quiet({ url: `${base}/missing.zip`, retries: 3 })),
        new RegExp(`HTTP 404 Not Found downloading ${base}/missing\\.zip`), DownloadError);
      assert.is((err as DownloadError).status, 404);
      assert.is(seen.length, 1);
    });
    // A port with nothing listening: take one from a server we then close.
    const probe = http.createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const { port } = probe.address() as AddressInfo;
    await new Promise((r) => probe.close(r));
    const url = `http://127.0.0.1:${port}/pets.zip`;
    await rejects(downloadPetImages(dir, quiet({ url, retries: 1 })), new RegExp(`Network error downloading ${url.replace(/[.]/g, '\\.')}: .*ECONNREFUSED`), DownloadError);
    assert.equal(readdirSync(dir).filter((n) => !n.endsWith('.part')), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('redirects are followed (relative and absolute), at most 5', async () => {
  const dir = tempDir();
  try {
    let base = '';
    const handler: Handler = (req, res) => {
      if (req.url === '/start') res.writeHead(302, { location: '/hop' }).end();
      else if (req.url === '/hop') res.writeHead(301, { location: `${base}/files/pets.zip` }).end();
      else if (req.url === '/files/pets.zip') serve(req, res, ZIP);
      else if (req.url?.startsWith('/loop')) res.writeHead(307, { location: `/loop${Number(req.url.slice(5) || 0) + 1}` }).end();
      else res.writeHead(404).end();
    };
    await withServer(handler, async (b, seen) => {
      base = b;
      const r = await downloadPetImages(dir, quiet({ url: `${b}/start`, archiveName: 'pets.zip' }));
      assert.equal(seen.map((s) => s.path), ['/start', '/hop', '/files/pets.zip']);
      assert.is(r.archivePath, join(dir, 'pets.zip'));
      assertExtracted(dir);

      seen.length = 0;
      await rejects(downloadPetImages(tempDirIn(dir), quiet({ url: `${b}/loop` })), /Too many redirects \(more than 5\)/, DownloadError);
      assert.is(seen.length, 6);
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

function tempDirIn(dir: string): string {
  const sub = join(dir, 'second');
  mkdirSync(sub, { recursive: true });
  return sub;
}

test('a corrupt archive (CRC) fails the extraction and leaves no PetImages, marker or staging folder', async () => {
  const dir = tempDir();
  try {
    const bad = makeZip([{ name: 'PetImages/Cat/0.jpg', data: CAT, method: 8 }, { name: 'PetImages/Dog/0.jpg', data: DOG, method: 8, crc: 1234 }]);
    await withServer((req, res) => serve(req, res, bad), async (base) => {
      await rejects(downloadPetImages(dir, quiet({ url: `${base}/pets.zip`, expectedBytes: bad.length })), /CRC32 mismatch/, ZipError);
      assert.equal(readdirSync(dir), ['pets.zip'], 'only the (size-checked) archive remains');
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('on a terminal the progress is a redrawn bar', async () => {
  const dir = tempDir();
  try {
    await withServer((req, res) => serve(req, res, ZIP), async (base) => {
      const tty = new Capture(true);
      await downloadPetImages(dir, quiet({ url: `${base}/pets.zip`, progress: true, progressStream: tty }));
      assert.match(tty.text, /\rDownloading pets\.zip \[#{30}\] 100\.0% .*MB\/s.*ETA/);
      assert.ok(tty.text.endsWith('\n'));
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
