// On-disk cache of decoded, resized images: per data folder and cache resolution, one binary file
// of packed size x size RGB uint8 images plus a JSON index. The index maps each image path to
// [file size, mtime, slot] (a changed file is decoded again) and remembers undecodable files with
// their reason, so later runs neither decode nor retry anything.
//
//   <cacheDir>/<folder>-<size>px-<hash>.json        index: { version, size, data, dataBytes, sha1, entries, failed }
//   <cacheDir>/<folder>-<size>px-<hash>.<nonce>.bin  data the index names
//
// Writes are atomic: data goes to a temp file renamed to a fresh name, then the index is written to
// a temp file and renamed over the old one; old data files are removed last. A reader therefore
// always sees a complete pair. An index that does not parse, or whose data file is missing, has
// the wrong length or the wrong SHA-1, is ignored (and rebuilt by the next write).
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, renameSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { basename, dirname, join, sep } from 'node:path';

const VERSION = 1;

export interface FileStamp {
  size: number;
  mtimeMs: number;
}

export interface CachedImage extends FileStamp {
  data: Uint8Array;
}

export interface CachedFailure extends FileStamp {
  reason: string;
}

export interface CacheContents {
  images: Map<string, CachedImage>;
  failed: Map<string, CachedFailure>;
}

interface IndexFile {
  version: number;
  size: number;
  data: string;
  dataBytes: number;
  sha1: string;
  entries: Record<string, [number, number, number]>;
  failed: Record<string, [number, number, string]>;
}

/** Deepest folder containing every path (the data set's root, normally). */
export function commonDir(paths: string[]): string {
  if (paths.length === 0) return '';
  let parts = dirname(paths[0]).split(sep);
  for (const p of paths) {
    const q = dirname(p).split(sep);
    let k = 0;
    while (k < parts.length && k < q.length && parts[k] === q[k]) k++;
    parts = parts.slice(0, k);
  }
  return parts.join(sep) || sep;
}

export class ImageCache {
  readonly indexPath: string;
  readonly bytesPerImage: number;
  private readonly prefix: string;

  /** `key` names the data set (normally its root folder); `size` is the cached square side. */
  constructor(readonly dir: string, key: string, readonly size: number) {
    const name = (basename(key) || 'data').replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 40);
    const hash = createHash('sha1').update(`${key}\0${size}`).digest('hex').slice(0, 10);
    this.prefix = `${name}-${size}px-${hash}`;
    this.indexPath = join(dir, `${this.prefix}.json`);
    this.bytesPerImage = size * size * 3;
  }

  /** Everything in the cache, or null (with why) when there is none or it is unusable. */
  read(): { contents: CacheContents | null; problem?: string } {
    if (!existsSync(this.indexPath)) return { contents: null };
    try {
      return { contents: this.readOrThrow() };
    } catch (e) {
      return { contents: null, problem: `ignoring unusable image cache ${this.indexPath} (${(e as Error).message}); it will be rebuilt` };
    }
  }

  private readOrThrow(): CacheContents {
    const index = JSON.parse(readFileSync(this.indexPath, 'utf8')) as IndexFile;
    if (index.version !== VERSION || index.size !== this.size) throw new Error('version or size mismatch');
    if (typeof index.data !== 'string' || index.data.includes('/') || index.data.includes('\\')) throw new Error('bad data file name');
    const entries = Object.entries(index.entries ?? {});
    const nSlots = index.dataBytes / this.bytesPerImage;
    if (!Number.isInteger(nSlots) || nSlots !== entries.length) throw new Error('index and data length disagree');
    const data = this.readData(join(this.dir, index.data), index.dataBytes, index.sha1);
    const images = new Map<string, CachedImage>();
    for (const [path, [size, mtimeMs, slot]] of entries) {
      if (!(Number.isInteger(slot) && slot >= 0 && slot < nSlots)) throw new Error(`bad slot for ${path}`);
      images.set(path, { size, mtimeMs, data: data(slot) });
    }
    const failed = new Map<string, CachedFailure>();
    for (const [path, [size, mtimeMs, reason]] of Object.entries(index.failed ?? {})) failed.set(path, { size, mtimeMs, reason: String(reason) });
    return { images, failed };
  }

  /** Read the data file in chunks below Node's buffer limits; returns slot -> image view. */
  private readData(path: string, bytes: number, sha1: string): (slot: number) => Uint8Array {
    const fd = openSync(path, 'r');
    try {
      const per = this.bytesPerImage;
      const perChunk = Math.max(1, Math.floor((256 << 20) / per));
      const chunks: Uint8Array[] = [];
      const hash = createHash('sha1');
      for (let pos = 0; pos < bytes; ) {
        const len = Math.min(perChunk * per, bytes - pos);
        const buf = new Uint8Array(len);
        let got = 0;
        while (got < len) {
          const n = readSync(fd, buf, got, len - got, pos + got);
          if (n === 0) throw new Error('data file shorter than the index says');
          got += n;
        }
        hash.update(buf);
        chunks.push(buf);
        pos += len;
      }
      if (readSync(fd, new Uint8Array(1), 0, 1, bytes) !== 0) throw new Error('data file longer than the index says');
      if (hash.digest('hex') !== sha1) throw new Error('data checksum mismatch');
      return (slot) => {
        const c = chunks[Math.floor(slot / perChunk)];
        const off = (slot % perChunk) * per;
        return c.subarray(off, off + per);
      };
    } finally {
      closeSync(fd);
    }
  }

  /**
   * Replace the cache with `contents`, merged with whatever is on disk now for paths that
   * `contents` does not mention (another loader over the same folder, e.g. the validation split).
   */
  write(contents: CacheContents): void {
    mkdirSync(this.dir, { recursive: true });
    const disk = this.read().contents;
    const images = new Map(contents.images);
    const failed = new Map(contents.failed);
    let oldData: string | null = null;
    if (disk) {
      for (const [p, v] of disk.images) if (!images.has(p) && !failed.has(p)) images.set(p, v);
      for (const [p, v] of disk.failed) if (!images.has(p) && !failed.has(p)) failed.set(p, v);
    }
    try {
      oldData = (JSON.parse(readFileSync(this.indexPath, 'utf8')) as IndexFile).data;
    } catch {
      oldData = null;
    }

    const nonce = randomBytes(6).toString('hex');
    const dataName = `${this.prefix}.${nonce}.bin`;
    const dataTmp = join(this.dir, `${dataName}.tmp`);
    const entries: IndexFile['entries'] = {};
    const hash = createHash('sha1');
    const fd = openSync(dataTmp, 'w');
    try {
      let slot = 0;
      for (const [path, img] of images) {
        if (img.data.length !== this.bytesPerImage) throw new Error(`cache image for ${path} has ${img.data.length} bytes, expected ${this.bytesPerImage}`);
        writeSync(fd, img.data);
        hash.update(img.data);
        entries[path] = [img.size, img.mtimeMs, slot++];
      }
    } catch (e) {
      closeSync(fd);
      rmSync(dataTmp, { force: true });
      throw e;
    }
    closeSync(fd);
    renameSync(dataTmp, join(this.dir, dataName));

    const index: IndexFile = {
      version: VERSION,
      size: this.size,
      data: dataName,
      dataBytes: images.size * this.bytesPerImage,
      sha1: hash.digest('hex'),
      entries,
      failed: Object.fromEntries([...failed].map(([p, f]) => [p, [f.size, f.mtimeMs, f.reason]])),
    };
    const indexTmp = `${this.indexPath}.${nonce}.tmp`;
    writeFileSync(indexTmp, JSON.stringify(index));
    renameSync(indexTmp, this.indexPath);
    if (oldData && oldData !== dataName && !oldData.includes('/')) rmSync(join(this.dir, oldData), { force: true });
    this.removeOrphans(dataName);
  }

  /** Data files no index names (left by a crash or an unreadable index), and stale temp files. */
  private removeOrphans(keep: string): void {
    const hourAgo = Date.now() - 3600_000;
    for (const f of readdirSync(this.dir)) {
      if (!f.startsWith(`${this.prefix}.`) || f === keep) continue;
      const p = join(this.dir, f);
      try {
        if (f.endsWith('.bin')) rmSync(p, { force: true });
        else if (f.endsWith('.tmp') && statSync(p).mtimeMs < hourAgo) rmSync(p, { force: true });
      } catch {
        // another process may be cleaning up too
      }
    }
  }
}
