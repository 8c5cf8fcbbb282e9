// Extracting downloaded ZIP archives.
//
// The central directory (and its zip64 records) is read here, and each entry's data is inflated by
// fflate's streaming Inflate, a chunk at a time: fflate's own ZIP readers either need the whole
// archive in memory (unzipSync; PetImages is ~800 MB) or scan local headers (Unzip), which can
// neither check names before anything is written nor give the CRCs to check. Supports methods 0
// (stored) and 8 (deflate); checks every entry's CRC32 and size (an entry inflating past its
// recorded size stops at once). Entry names are validated before anything is written: absolute
// paths, drive letters and `..` segments are rejected, so an archive cannot write outside the
// destination. Directory entries are skipped (folders are made for the files in them).
import { open, mkdir, type FileHandle } from 'node:fs/promises';
import { dirname, join, relative, resolve, isAbsolute } from 'node:path';
import { Inflate } from 'fflate';

export class ZipError extends Error {
  constructor(readonly zipPath: string, message: string, readonly entry?: string) {
    super(`${zipPath}${entry !== undefined ? ` (entry ${JSON.stringify(entry)})` : ''}: ${message}`);
    this.name = 'ZipError';
  }
}

export interface ZipEntry {
  /** The name as stored (forward slashes; backslashes are kept here and treated as separators on extraction). */
  name: string;
  method: number;
  flags: number;
  crc32: number;
  compressedSize: number;
  uncompressedSize: number;
  localHeaderOffset: number;
  isDirectory: boolean;
}

export interface ExtractOptions {
  /**
   * Compressed bytes read and inflated at a time (default 64 KiB): bounds the memory one step takes,
   * as deflate expands at most ~1032x.
   */
  chunkSize?: number;
  /** Called after each file is written (for progress). */
  onFile?: (entry: ZipEntry, done: number, total: number) => void;
}

export interface ExtractResult {
  files: number;
  bytes: number;
}

const SIG_EOCD = 0x06054b50;
const SIG_ZIP64_LOCATOR = 0x07064b50;
const SIG_ZIP64_EOCD = 0x06064b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_LOCAL = 0x04034b50;
const EOCD_SIZE = 22;
const MAX_COMMENT = 0xffff;
const FLAG_ENCRYPTED = 0x1;
const FLAG_UTF8 = 0x800;

// ---------------------------------------------------------------------------------------------
// CRC32 (IEEE, reflected, the one ZIP uses). zlib.crc32 needs Node 20.15 and fflate does not export
// its own, so a table version.

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC32 of `data`; pass the previous result as `crc` to continue over several chunks. */
export function crc32(data: Uint8Array, crc = 0): number {
  let c = ~crc >>> 0;
  for (let i = 0; i < data.length; i++) c = CRC_TABLE[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

// ---------------------------------------------------------------------------------------------
// Entry names

/**
 * The path segments an entry name extracts to, or an error message when the name would escape the
 * destination (absolute, drive letter, `..`, NUL). Backslashes count as separators.
 */
export function entryPathSegments(name: string): string[] | string {
  if (name.includes('\0')) return 'the name contains a NUL byte';
  const unified = name.replace(/\\/g, '/');
  if (unified.startsWith('/')) return 'absolute paths are not allowed';
  if (/^[a-zA-Z]:/.test(unified)) return 'drive-letter paths are not allowed';
  const segments = unified.split('/').filter((s) => s !== '' && s !== '.');
  if (segments.includes('..')) return '".." path segments are not allowed';
  return segments;
}

// ---------------------------------------------------------------------------------------------
// Reading the directory

async function readAt(fh: FileHandle, position: number, length: number): Promise<Buffer> {
  const buf = Buffer.alloc(length);
  let got = 0;
  while (got < length) {
    const { bytesRead } = await fh.read(buf, got, length - got, position + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return got === length ? buf : buf.subarray(0, got);
}

function u64(buf: Buffer, at: number, zipPath: string): number {
  const v = buf.readBigUInt64LE(at);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new ZipError(zipPath, 'a zip64 size or offset is too large');
  return Number(v);
}

interface Directory {
  count: number;
  offset: number;
  size: number;
}

/** Finds the central directory through the end-of-central-directory record (and the zip64 one when present). */
async function findDirectory(fh: FileHandle, fileSize: number, zipPath: string): Promise<Directory> {
  const tailLength = Math.min(fileSize, EOCD_SIZE + MAX_COMMENT);
  const tailStart = fileSize - tailLength;
  const tail = await readAt(fh, tailStart, tailLength);
  let eocd = -1;
  for (let i = tail.length - EOCD_SIZE; i >= 0; i--) {
    if (tail.readUInt32LE(i) === SIG_EOCD && i + EOCD_SIZE + tail.readUInt16LE(i + 20) <= tail.length) { eocd = i; break; }
  }
  if (eocd < 0) throw new ZipError(zipPath, 'not a ZIP archive (no end-of-central-directory record; truncated download?)');
  const disk = tail.readUInt16LE(eocd + 4), cdDisk = tail.readUInt16LE(eocd + 6);
  const diskCount = tail.readUInt16LE(eocd + 8), count = tail.readUInt16LE(eocd + 10);
  let dir: Directory = { count, size: tail.readUInt32LE(eocd + 12), offset: tail.readUInt32LE(eocd + 16) };

  // zip64: a locator sits right before the EOCD and points at the zip64 EOCD record.
  const locatorAt = eocd - 20;
  if (locatorAt >= 0 && tail.readUInt32LE(locatorAt) === SIG_ZIP64_LOCATOR) {
    const recordOffset = u64(tail, locatorAt + 8, zipPath);
    const rec = await readAt(fh, recordOffset, 56);
    if (rec.length < 56 || rec.readUInt32LE(0) !== SIG_ZIP64_EOCD) throw new ZipError(zipPath, 'broken zip64 end-of-central-directory record');
    if (rec.readUInt32LE(16) !== 0 || rec.readUInt32LE(20) !== 0) throw new ZipError(zipPath, 'multi-disk (split) archives are not supported');
    dir = { count: u64(rec, 32, zipPath), size: u64(rec, 40, zipPath), offset: u64(rec, 48, zipPath) };
  } else {
    if (disk !== 0 || cdDisk !== 0 || diskCount !== count) throw new ZipError(zipPath, 'multi-disk (split) archives are not supported');
    if (count === 0xffff || dir.size === 0xffffffff || dir.offset === 0xffffffff) {
      throw new ZipError(zipPath, 'the archive says it is zip64 but has no zip64 locator');
    }
  }
  if (dir.offset + dir.size > fileSize) throw new ZipError(zipPath, 'the central directory lies past the end of the file (truncated?)');
  return dir;
}

/** Lists the entries of a ZIP file from its central directory. */
export async function readZipEntries(zipPath: string): Promise<ZipEntry[]> {
  const fh = await open(zipPath, 'r');
  try {
    return await listEntries(fh, zipPath);
  } finally {
    await fh.close();
  }
}

async function listEntries(fh: FileHandle, zipPath: string): Promise<ZipEntry[]> {
  const fileSize = (await fh.stat()).size;
  const dir = await findDirectory(fh, fileSize, zipPath);
  const cd = await readAt(fh, dir.offset, dir.size);
  const entries: ZipEntry[] = [];
  let p = 0;
  for (let i = 0; i < dir.count; i++) {
    if (p + 46 > cd.length || cd.readUInt32LE(p) !== SIG_CENTRAL) throw new ZipError(zipPath, `central directory entry ${i} is broken`);
    const flags = cd.readUInt16LE(p + 8);
    const nameLength = cd.readUInt16LE(p + 28), extraLength = cd.readUInt16LE(p + 30), commentLength = cd.readUInt16LE(p + 32);
    const end = p + 46 + nameLength + extraLength + commentLength;
    if (end > cd.length) throw new ZipError(zipPath, `central directory entry ${i} runs past the directory`);
    const nameBytes = cd.subarray(p + 46, p + 46 + nameLength);
    // Without the UTF-8 flag names are CP437; PetImages names are ASCII, latin1 is close enough.
    const name = nameBytes.toString(flags & FLAG_UTF8 ? 'utf8' : 'latin1');
    let uncompressedSize = cd.readUInt32LE(p + 24);
    let compressedSize = cd.readUInt32LE(p + 20);
    let localHeaderOffset = cd.readUInt32LE(p + 42);
    const diskStart = cd.readUInt16LE(p + 34);
    if (uncompressedSize === 0xffffffff || compressedSize === 0xffffffff || localHeaderOffset === 0xffffffff) {
      // zip64 extended information extra field (id 1): the 0xffffffff fields, in this order.
      const extra = cd.subarray(p + 46 + nameLength, p + 46 + nameLength + extraLength);
      let q = 0, found = false;
      while (q + 4 <= extra.length) {
        const id = extra.readUInt16LE(q), size = extra.readUInt16LE(q + 2);
        if (id === 1) {
          let r = q + 4;
          const next = (): number => {
            if (r + 8 > q + 4 + size) throw new ZipError(zipPath, 'zip64 extra field too short', name);
            const v = u64(extra, r, zipPath); r += 8; return v;
          };
          if (uncompressedSize === 0xffffffff) uncompressedSize = next();
          if (compressedSize === 0xffffffff) compressedSize = next();
          if (localHeaderOffset === 0xffffffff) localHeaderOffset = next();
          found = true;
          break;
        }
        q += 4 + size;
      }
      if (!found) throw new ZipError(zipPath, 'zip64 sizes without a zip64 extra field', name);
    }
    if (diskStart !== 0 && diskStart !== 0xffff) throw new ZipError(zipPath, 'multi-disk (split) archives are not supported', name);
    entries.push({
      name, flags, method: cd.readUInt16LE(p + 10), crc32: cd.readUInt32LE(p + 16),
      compressedSize, uncompressedSize, localHeaderOffset,
      isDirectory: name.endsWith('/') || name.endsWith('\\'),
    });
    p = end;
  }
  return entries;
}

// ---------------------------------------------------------------------------------------------
// Extraction

/** Where an entry's data starts: after its local header, whose name and extra lengths may differ from the central one. */
async function dataStart(fh: FileHandle, entry: ZipEntry, fileSize: number, zipPath: string): Promise<number> {
  const header = await readAt(fh, entry.localHeaderOffset, 30);
  if (header.length < 30 || header.readUInt32LE(0) !== SIG_LOCAL) throw new ZipError(zipPath, 'bad local header', entry.name);
  const start = entry.localHeaderOffset + 30 + header.readUInt16LE(26) + header.readUInt16LE(28);
  if (start + entry.compressedSize > fileSize) throw new ZipError(zipPath, 'entry data runs past the end of the file (truncated?)', entry.name);
  return start;
}

function checkEntry(zipPath: string, entry: ZipEntry, crc: number, size: number): void {
  if (size !== entry.uncompressedSize) {
    throw new ZipError(zipPath, `size mismatch: got ${size} bytes, the directory says ${entry.uncompressedSize}`, entry.name);
  }
  if (crc !== entry.crc32) {
    throw new ZipError(zipPath, `CRC32 mismatch: got ${hex(crc)}, expected ${hex(entry.crc32)} (corrupt archive)`, entry.name);
  }
}

const hex = (v: number) => `0x${v.toString(16).padStart(8, '0')}`;

async function writeAll(out: FileHandle, data: Uint8Array): Promise<void> {
  for (let done = 0; done < data.length; ) done += (await out.write(data, done)).bytesWritten;
}

/** Reads the entry's data a chunk at a time, inflates it (method 8) and writes it, checking size and CRC. */
async function extractEntry(fh: FileHandle, zipPath: string, entry: ZipEntry, start: number, outPath: string, chunkSize: number): Promise<void> {
  let crc = 0, size = 0;
  const ready: Uint8Array[] = [];
  const take = (data: Uint8Array) => {
    size += data.length;
    if (size > entry.uncompressedSize) throw new ZipError(zipPath, `size mismatch: more than ${entry.uncompressedSize} bytes`, entry.name);
    crc = crc32(data, crc);
    ready.push(data);
  };
  const inflater = entry.method === 8 ? new Inflate((data) => take(data)) : null;
  const out = await open(outPath, 'w');
  try {
    for (let pos = 0; pos < entry.compressedSize; ) {
      const n = Math.min(chunkSize, entry.compressedSize - pos);
      const chunk = await readAt(fh, start + pos, n);
      if (chunk.length < n) throw new ZipError(zipPath, 'entry data runs past the end of the file (truncated?)', entry.name);
      pos += n;
      if (!inflater) {
        take(chunk);
      } else {
        try {
          inflater.push(chunk, pos === entry.compressedSize);
        } catch (err) {
          if (err instanceof ZipError) throw err;
          throw new ZipError(zipPath, `cannot inflate: ${(err as Error).message} (corrupt archive)`, entry.name);
        }
      }
      for (const data of ready) await writeAll(out, data);
      ready.length = 0;
    }
  } finally {
    await out.close();
  }
  checkEntry(zipPath, entry, crc, size);
}

/**
 * Extracts every file of the ZIP at `zipPath` under `destDir` (created if needed). All names are
 * validated first, so an archive with an unsafe name writes nothing. Throws ZipError on a bad
 * archive, an unsupported feature (encryption, methods other than 0 and 8, split archives), a CRC
 * or size mismatch. Files already in `destDir` are overwritten.
 */
export async function extractZip(zipPath: string, destDir: string, opts: ExtractOptions = {}): Promise<ExtractResult> {
  const chunkSize = opts.chunkSize ?? 64 * 1024;
  if (!(Number.isInteger(chunkSize) && chunkSize > 0)) throw new RangeError(`chunkSize must be a positive integer, got ${chunkSize}`);
  const root = resolve(destDir);
  const fh = await open(zipPath, 'r');
  try {
    const fileSize = (await fh.stat()).size;
    const entries = await listEntries(fh, zipPath);
    // Validate everything before writing anything.
    const plan: { entry: ZipEntry; outPath: string }[] = [];
    for (const entry of entries) {
      const segments = entryPathSegments(entry.name);
      if (typeof segments === 'string') throw new ZipError(zipPath, `unsafe path: ${segments}`, entry.name);
      if (entry.isDirectory || segments.length === 0) continue;
      if (entry.flags & FLAG_ENCRYPTED) throw new ZipError(zipPath, 'encrypted entries are not supported', entry.name);
      if (entry.method !== 0 && entry.method !== 8) {
        throw new ZipError(zipPath, `unsupported compression method ${entry.method} (only 0 stored and 8 deflate)`, entry.name);
      }
      if (entry.method === 0 && entry.compressedSize !== entry.uncompressedSize) {
        throw new ZipError(zipPath, 'stored entry with different compressed and uncompressed sizes', entry.name);
      }
      const outPath = join(root, ...segments);
      const rel = relative(root, outPath);
      if (rel === '' || rel.startsWith('..') || isAbsolute(rel)) throw new ZipError(zipPath, 'unsafe path: escapes the destination', entry.name);
      plan.push({ entry, outPath });
    }

    await mkdir(root, { recursive: true });
    const madeDirs = new Set<string>();
    let bytes = 0;
    for (let i = 0; i < plan.length; i++) {
      const { entry, outPath } = plan[i];
      const parent = dirname(outPath);
      if (!madeDirs.has(parent)) {
        await mkdir(parent, { recursive: true });
        madeDirs.add(parent);
      }
      const start = await dataStart(fh, entry, fileSize, zipPath);
      await extractEntry(fh, zipPath, entry, start, outPath, chunkSize);
      bytes += entry.uncompressedSize;
      opts.onFile?.(entry, i + 1, plan.length);
    }
    return { files: plan.length, bytes };
  } finally {
    await fh.close();
  }
}
