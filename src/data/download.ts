// Downloading and extracting Microsoft's "Kaggle Cats and Dogs Dataset" (PetImages): Node built-ins, and fflate
// for inflating the archive (unzip.ts).
//
//   const { dataDir } = await downloadPetImages('data');   // -> data/PetImages/{Cat,Dog}/*.jpg
//
// - The archive goes to `<destDir>/<name>.zip.part` first; an interrupted download resumes from there
//   (`Range: bytes=<have>-`, appended on 206, restarted from zero when the server answers 200).
//   Network failures are retried a few times within a run, resuming each time.
// - Sizes are checked twice: the server's Content-Length / Content-Range total against the expected size
//   before writing, and the finished file's size before it is renamed from `.part` to its final name.
// - Redirects (3xx) are followed, at most 5. HTTP errors and network failures are errors naming the URL.
// - A progress bar goes to stderr (bytes, %, MB/s, ETA); when stderr is not a terminal, plain lines
//   every 10 s instead.
// - Extraction goes to a staging folder inside destDir that is moved into place when complete; a marker
//   file written last says the extraction finished, so a later call returns at once and a partially
//   extracted folder (no marker) is extracted again.
import * as http from 'node:http';
import * as https from 'node:https';
import { createWriteStream } from 'node:fs';
import { mkdir, open, readFile, readdir, rename, rm, stat } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { randomBytes } from 'node:crypto';
import { basename, join, resolve } from 'node:path';
import { extractZip } from './unzip.ts';
import { writeFileAtomic } from '../io/files-node.ts';

/** Microsoft's official download of the Kaggle Cats and Dogs Dataset (PetImages/Cat, PetImages/Dog). */
export const PETIMAGES_URL =
  'https://download.microsoft.com/download/3/E/1/3E1C3F21-ECDB-4869-8368-6DEBA77B919F/kagglecatsanddogs_5340.zip';
/** Its size in bytes (786.7 MiB), as the server reports it (Content-Length). */
export const PETIMAGES_BYTES = 824_887_076;
/** Written into destDir after a complete extraction. */
export const EXTRACTED_MARKER = '.petimages-extracted.json';

const STAGING_PREFIX = '.extract-';

export class DownloadError extends Error {
  constructor(message: string, readonly url: string, readonly status?: number, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DownloadError';
  }
}

/** Network trouble worth retrying (with resume); everything else is final. */
class RetryableError extends DownloadError {}

export interface HttpResponse {
  status: number;
  statusText: string;
  headers: Record<string, string | string[] | undefined>;
  /** The body; destroy it when not reading it. */
  body: Readable;
}

/** One GET without following redirects. Rejects on network failure. The default uses node:http/https. */
export type HttpGet = (url: string, headers: Record<string, string>, timeoutMs: number) => Promise<HttpResponse>;

export interface FileDownloadOptions {
  /** Expected size in bytes; null or undefined skips the check (the server's Content-Length is still enforced). */
  expectedBytes?: number | null;
  /** Show progress (default true). */
  progress?: boolean;
  /** Where progress and retry notes go (default process.stderr); a bar when its isTTY is true, plain lines otherwise. */
  progressStream?: NodeJS.WritableStream & { isTTY?: boolean };
  /** Replaces the HTTP client (tests, proxies). */
  fetchImpl?: HttpGet;
  /** Redirects followed per request (default 5). */
  maxRedirects?: number;
  /** Retries after a network failure or an HTTP 5xx/408/429, each resuming the partial file (default 3). */
  retries?: number;
  /** Wait before the first retry, doubled each time up to 30 s (default 2000 ms). */
  retryDelayMs?: number;
  /** A connection that sends nothing for this long fails (default 60000 ms). */
  timeoutMs?: number;
}

export interface PetImagesOptions extends FileDownloadOptions {
  /** Archive URL (default PETIMAGES_URL). */
  url?: string;
  /**
   * Expected archive size in bytes. Defaults to PETIMAGES_BYTES when `url` is the default and to no check
   * otherwise; pass null to skip the check.
   */
  expectedBytes?: number | null;
  /** Archive file name inside destDir (default: the URL's last path segment). */
  archiveName?: string;
  /** Keep the archive after extracting (default true, so a re-extraction needs no download). */
  keepArchive?: boolean;
}

export interface PetImagesResult {
  /** `<destDir>/PetImages`, holding Cat/ and Dog/. */
  dataDir: string;
  archivePath: string;
  /** Whether this call downloaded anything / extracted the archive (both false when the marker was found). */
  downloaded: boolean;
  extracted: boolean;
}

// ---------------------------------------------------------------------------------------------
// HTTP

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

/** The default HttpGet: node:http / node:https, no keep-alive, no compression, an idle timeout. */
export const nodeHttpGet: HttpGet = (url, headers, timeoutMs) =>
  new Promise((resolvePromise, reject) => {
    const target = new URL(url);
    const client = target.protocol === 'https:' ? https : target.protocol === 'http:' ? http : null;
    if (!client) {
      reject(new Error(`unsupported protocol ${target.protocol}`));
      return;
    }
    const req = client.get(target, {
      agent: false,
      headers: { 'user-agent': 'vitcatsvdogs-downloader', 'accept-encoding': 'identity', ...headers },
    }, (res) => {
      resolvePromise({ status: res.statusCode ?? 0, statusText: res.statusMessage ?? '', headers: res.headers, body: res });
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`no data for ${Math.round(timeoutMs / 1000)} s`)));
    req.on('error', reject);
  });

function header(res: HttpResponse, name: string): string | undefined {
  const v = res.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** GET following up to `maxRedirects` redirects; returns the first non-redirect response. */
async function getFollowingRedirects(
  url: string, headers: Record<string, string>, get: HttpGet, maxRedirects: number, timeoutMs: number,
): Promise<{ res: HttpResponse; finalUrl: string }> {
  let current = url;
  for (let hop = 0; ; hop++) {
    let res: HttpResponse;
    try {
      res = await get(current, headers, timeoutMs);
    } catch (err) {
      const where = current === url ? url : `${current} (redirected from ${url})`;
      throw new RetryableError(`Network error downloading ${where}: ${(err as Error).message}`, current, undefined, { cause: err });
    }
    if (!REDIRECTS.has(res.status)) return { res, finalUrl: current };
    res.body.destroy();
    if (hop >= maxRedirects) throw new DownloadError(`Too many redirects (more than ${maxRedirects}) downloading ${url}; last was ${current}`, url, res.status);
    const location = header(res, 'location');
    if (!location) throw new DownloadError(`HTTP ${res.status} without a Location header from ${current}`, current, res.status);
    const next = new URL(location, current);
    if (next.protocol !== 'http:' && next.protocol !== 'https:') {
      throw new DownloadError(`Redirect to unsupported URL ${next.href} from ${current}`, current, res.status);
    }
    current = next.href;
  }
}

// ---------------------------------------------------------------------------------------------
// Progress

function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '--:--';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  const mmss = `${String(m).padStart(h ? 2 : 1, '0')}:${String(r).padStart(2, '0')}`;
  return h ? `${h}:${mmss}` : mmss;
}

const MB = 1024 * 1024;

/**
 * A progress display for a byte count: on a terminal a redrawn bar (at most 10 times a second), otherwise
 * a plain line every `lineIntervalMs`. Speed and ETA count only the bytes of this session (not resumed ones).
 */
export class ProgressBar {
  private readonly started = Date.now();
  private lastDraw = 0;
  private current: number;
  private readonly tty: boolean;

  constructor(
    private readonly stream: NodeJS.WritableStream & { isTTY?: boolean },
    private readonly label: string,
    private readonly total: number | null,
    private readonly startBytes = 0,
    private readonly lineIntervalMs = 10_000,
  ) {
    this.current = startBytes;
    this.tty = stream.isTTY === true;
    this.lastDraw = this.tty ? 0 : this.started;
  }

  update(bytes: number): void {
    this.current = bytes;
    const now = Date.now();
    if (now - this.lastDraw < (this.tty ? 100 : this.lineIntervalMs)) return;
    this.lastDraw = now;
    this.draw(null);
  }

  /** Draws the last state and ends the line; `ok` false marks an interrupted transfer. */
  done(ok = true): void {
    this.draw(ok ? ' (done)' : ' (interrupted)');
  }

  /** The text of one status line (without the bar or line ending). */
  line(): string {
    const elapsed = Math.max((Date.now() - this.started) / 1000, 1e-3);
    // The first half second's rate is mostly noise (socket buffers), so no speed or ETA before that.
    const rate = elapsed < 0.5 ? 0 : (this.current - this.startBytes) / elapsed;
    const have = `${(this.current / MB).toFixed(1)}`;
    const speed = rate > 0 ? `${(rate / MB).toFixed(1)} MB/s` : '-- MB/s';
    if (this.total === null || this.total <= 0) return `${have} MB  ${speed}`;
    const pct = `${((100 * this.current) / this.total).toFixed(1)}%`;
    const eta = rate > 0 ? (this.total - this.current) / rate : Infinity;
    return `${pct}  ${have}/${(this.total / MB).toFixed(1)} MB  ${speed}  ETA ${formatDuration(eta)}`;
  }

  /** `final`: null while running, else the suffix of the last line. */
  private draw(final: string | null): void {
    if (this.tty) {
      const width = 30;
      const frac = this.total ? Math.min(this.current / this.total, 1) : 0;
      const filled = Math.round(frac * width);
      const bar = this.total ? `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ` : '';
      this.stream.write(`\r${this.label} ${bar}${this.line()}\x1b[K${final !== null ? '\n' : ''}`);
    } else {
      this.stream.write(`${this.label}: ${this.line()}${final ?? ''}\n`);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Resumable download of one file

async function fileSize(path: string): Promise<number | null> {
  try {
    return (await stat(path)).size;
  } catch {
    return null;
  }
}

async function fsyncFile(path: string): Promise<void> {
  const fh = await open(path, 'r+');
  try { await fh.sync(); } finally { await fh.close(); }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Downloads `url` to `destPath` through `<destPath>.part`, resuming a partial file, and renames it only
 * after the size check passes. Returns the final size.
 */
export async function downloadFile(url: string, destPath: string, opts: FileDownloadOptions = {}): Promise<number> {
  const partPath = `${destPath}.part`;
  const expected = opts.expectedBytes ?? null;
  const retries = opts.retries ?? 3;
  const stream = opts.progressStream ?? process.stderr;
  const note = (msg: string) => { if (opts.progress !== false) stream.write(`${msg}\n`); };

  for (let attempt = 0; ; attempt++) {
    try {
      await downloadAttempt(url, partPath, expected, opts);
      break;
    } catch (err) {
      if (!(err instanceof RetryableError) || attempt >= retries) throw err;
      const delay = Math.min((opts.retryDelayMs ?? 2000) * 2 ** attempt, 30_000);
      const have = (await fileSize(partPath)) ?? 0;
      note(`${err.message}; retrying in ${(delay / 1000).toFixed(1)} s (retry ${attempt + 1} of ${retries}), resuming at ${(have / MB).toFixed(1)} MB`);
      await sleep(delay);
    }
  }

  const size = (await fileSize(partPath)) ?? 0;
  if (expected !== null && size !== expected) {
    await rm(partPath, { force: true });
    throw new DownloadError(`Size check failed for ${url}: downloaded ${size} bytes, expected ${expected}; the partial file was removed`, url);
  }
  await fsyncFile(partPath);
  await rename(partPath, destPath);
  return size;
}

/** Parses `Content-Range: bytes start-end/total` (total may be `*`). */
function parseContentRange(value: string | undefined): { start: number; total: number | null } | null {
  const m = /^bytes\s+(\d+)-(\d+)\/(\d+|\*)$/i.exec(value?.trim() ?? '');
  if (!m) return null;
  return { start: Number(m[1]), total: m[3] === '*' ? null : Number(m[3]) };
}

async function downloadAttempt(url: string, partPath: string, expected: number | null, opts: FileDownloadOptions): Promise<void> {
  const get = opts.fetchImpl ?? nodeHttpGet;
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const maxRedirects = opts.maxRedirects ?? 5;

  let have = (await fileSize(partPath)) ?? 0;
  if (expected !== null && have > expected) {
    await rm(partPath, { force: true }); // longer than the file can be: not ours, start over
    have = 0;
  }
  if (expected !== null && have === expected) return; // finished earlier but not yet renamed

  let { res, finalUrl } = await getFollowingRedirects(url, have > 0 ? { range: `bytes=${have}-` } : {}, get, maxRedirects, timeoutMs);
  if (res.status === 416 && have > 0) {
    // The server cannot serve our range (the file changed?): start over once, without a Range.
    res.body.destroy();
    await rm(partPath, { force: true });
    have = 0;
    ({ res, finalUrl } = await getFollowingRedirects(url, {}, get, maxRedirects, timeoutMs));
  }

  const via = finalUrl === url ? url : `${url} (redirected to ${finalUrl})`;
  let total: number | null;
  let append: boolean;
  if (res.status === 206 && have > 0) {
    const range = parseContentRange(header(res, 'content-range'));
    if (!range || range.start !== have) {
      res.body.destroy();
      await rm(partPath, { force: true });
      throw new RetryableError(`Bad Content-Range "${header(res, 'content-range') ?? ''}" for bytes=${have}- from ${via}; restarting from zero`, url, 206);
    }
    total = range.total;
    append = true;
  } else if (res.status === 200) {
    const length = header(res, 'content-length');
    total = length !== undefined && /^\d+$/.test(length) ? Number(length) : null;
    append = false; // a 200 is the whole file: the partial one is replaced
    have = 0;
  } else {
    res.body.destroy();
    const msg = `HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''} downloading ${via}`;
    const transient = res.status >= 500 || res.status === 408 || res.status === 429;
    throw transient ? new RetryableError(msg, url, res.status) : new DownloadError(msg, url, res.status);
  }

  if (expected !== null && total !== null && total !== expected) {
    res.body.destroy();
    await rm(partPath, { force: true });
    throw new DownloadError(`Size check failed for ${via}: the server reports ${total} bytes, expected ${expected}`, url, res.status);
  }

  const size = total ?? expected;
  const bar = opts.progress === false ? null
    : new ProgressBar(opts.progressStream ?? process.stderr, `Downloading ${basename(new URL(url).pathname) || url}`, size, have);
  let received = have;
  const counter = new Transform({
    transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback) {
      received += chunk.length;
      bar?.update(received);
      done(null, chunk);
    },
  });
  try {
    await pipeline(res.body, counter, createWriteStream(partPath, { flags: append ? 'a' : 'w' }));
  } catch (err) {
    bar?.done(false);
    const e = err as NodeJS.ErrnoException;
    if (e.syscall === 'open' || e.syscall === 'write') throw new DownloadError(`Cannot write ${partPath}: ${e.message}`, url, undefined, { cause: err });
    throw new RetryableError(`Network error downloading ${via} after ${received} bytes: ${e.message}`, url, undefined, { cause: err });
  }
  const short = total !== null && received < total;
  bar?.done(!short);
  if (short) {
    throw new RetryableError(`Connection to ${via} closed after ${received} of ${total} bytes`, url);
  }
}

// ---------------------------------------------------------------------------------------------
// PetImages

async function isDirectory(path: string): Promise<boolean> {
  return stat(path).then((s) => s.isDirectory(), () => false);
}

interface Marker {
  url: string;
  archive: string;
  archiveBytes: number;
  files: number;
  bytes: number;
  extractedAt: string;
}

async function readMarker(path: string): Promise<Marker | null> {
  try {
    const m = JSON.parse(await readFile(path, 'utf8')) as Marker;
    return typeof m.files === 'number' ? m : null;
  } catch {
    return null;
  }
}

/**
 * Extracts the archive into a staging folder inside `root`, then moves its top-level entries into `root`
 * (replacing older or partial copies). Leftover staging folders of interrupted runs are removed first.
 */
async function extractIntoPlace(archivePath: string, root: string, reserved: Set<string>, opts: FileDownloadOptions) {
  for (const name of await readdir(root)) {
    if (name.startsWith(STAGING_PREFIX)) await rm(join(root, name), { recursive: true, force: true });
  }
  const staging = join(root, `${STAGING_PREFIX}${process.pid}-${randomBytes(4).toString('hex')}`);
  const stream = opts.progressStream ?? process.stderr;
  const progress: { bar: ProgressBar | null } = { bar: null }; // made on the first file, when the count is known
  try {
    const result = await extractZip(archivePath, staging, {
      onFile: (_entry, done, total) => {
        if (opts.progress === false) return;
        progress.bar ??= new FilesProgress(stream, `Extracting ${basename(archivePath)}`, total);
        progress.bar.update(done);
      },
    });
    progress.bar?.done();
    for (const name of await readdir(staging)) {
      const target = join(root, name);
      if (reserved.has(target) || name.startsWith(STAGING_PREFIX)) continue; // never clobber our own files
      await rm(target, { recursive: true, force: true });
      await rename(join(staging, name), target);
    }
    return result;
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

/** ProgressBar for a file count. */
class FilesProgress extends ProgressBar {
  constructor(stream: NodeJS.WritableStream & { isTTY?: boolean }, label: string, private readonly files: number) {
    super(stream, label, files);
  }
  private n = 0;
  override update(done: number): void {
    this.n = done;
    super.update(done);
  }
  override line(): string {
    return `${this.n}/${this.files} files`;
  }
}

/**
 * Downloads Microsoft's Kaggle Cats and Dogs archive into `destDir` (resumable, size-checked, with
 * progress), extracts it there and returns `<destDir>/PetImages` (Cat/ and Dog/ inside). Returns at once
 * when a previous call completed the extraction (the EXTRACTED_MARKER file); an existing complete archive
 * is extracted without downloading. Some PetImages files are corrupt or empty; the loader skips those.
 */
export async function downloadPetImages(destDir: string, opts: PetImagesOptions = {}): Promise<PetImagesResult> {
  const url = opts.url ?? PETIMAGES_URL;
  const expected = opts.expectedBytes !== undefined ? opts.expectedBytes : url === PETIMAGES_URL ? PETIMAGES_BYTES : null;
  const root = resolve(destDir);
  const dataDir = join(root, 'PetImages');
  const markerPath = join(root, EXTRACTED_MARKER);
  const archivePath = join(root, opts.archiveName ?? (basename(new URL(url).pathname) || 'petimages.zip'));

  if ((await readMarker(markerPath)) && (await isDirectory(dataDir))) {
    return { dataDir, archivePath, downloaded: false, extracted: false };
  }
  await mkdir(root, { recursive: true });

  let downloaded = false;
  const existing = await fileSize(archivePath);
  if (existing === null) {
    await downloadFile(url, archivePath, { ...opts, expectedBytes: expected });
    downloaded = true;
  } else if (expected !== null && existing !== expected) {
    throw new DownloadError(`${archivePath} has ${existing} bytes, expected ${expected}; delete it to download it again`, url);
  }

  // The marker goes first: a stale one must not vouch for a folder that is about to be replaced.
  await rm(markerPath, { force: true });
  const reserved = new Set([archivePath, `${archivePath}.part`, markerPath]);
  const result = await extractIntoPlace(archivePath, root, reserved, opts);
  if (!(await isDirectory(dataDir))) {
    throw new DownloadError(`The archive ${archivePath} (from ${url}) has no PetImages folder`, url);
  }
  const marker: Marker = {
    url, archive: basename(archivePath), archiveBytes: (await fileSize(archivePath)) ?? 0,
    files: result.files, bytes: result.bytes, extractedAt: new Date().toISOString(),
  };
  await writeFileAtomic(markerPath, `${JSON.stringify(marker, null, 2)}\n`);
  if (opts.keepArchive === false) await rm(archivePath, { force: true });
  return { dataDir, archivePath, downloaded, extracted: true };
}
