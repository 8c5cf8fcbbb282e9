// Node-only file IO: reading bytes, atomic writes, and HF-style checkpoint folders
// (config.json + model.safetensors) for the platform-neutral readers and writers of src/vit/checkpoint.ts.
import { existsSync, readdirSync } from 'node:fs';
import { open, readFile, rename, rm, mkdir, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { ViTConfig } from '../vit/config.ts';
import {
  CONFIG_FILE, checkpointBytes, readCheckpoint, type Checkpoint, type CheckpointFiles, type CheckpointWriter,
} from '../vit/checkpoint.ts';

export { CONFIG_FILE, WEIGHTS_FILE, type Checkpoint } from '../vit/checkpoint.ts';

/** Wraps a Node error with a message naming the path, keeping its `code` (ENOENT, EISDIR, ...). */
function fileError(what: string, path: string, err: unknown): Error {
  const cause = err as NodeJS.ErrnoException;
  const out = new Error(`${what} ${path}: ${cause?.message ?? String(err)}`, { cause }) as NodeJS.ErrnoException;
  if (cause?.code) out.code = cause.code;
  return out;
}

export async function readFileBytes(path: string): Promise<Uint8Array> {
  try {
    const buf = await readFile(path);
    return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  } catch (err) {
    throw fileError('Cannot read', path, err);
  }
}

/**
 * Writes `data` to a temp file next to `path` (`.<name>.tmp-<pid>-<random>`), fsyncs it and renames it
 * over `path`, so readers see either the old or the new file, never a partial one. On any failure the temp
 * file is removed and the old file is left as it was.
 */
export async function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`);
  const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data;
  let handle: Awaited<ReturnType<typeof open>> | null = null;
  try {
    handle = await open(tmp, 'wx', 0o644);
    let written = 0;
    while (written < bytes.byteLength) {
      const { bytesWritten } = await handle.write(bytes, written, bytes.byteLength - written);
      written += bytesWritten;
    }
    await handle.sync();
    await handle.close();
    handle = null;
    await rename(tmp, path);
  } catch (err) {
    if (handle) await handle.close().catch(() => {});
    await rm(tmp, { force: true }).catch(() => {});
    throw fileError('Cannot write', path, err);
  }
  await syncDir(dir);
}

/** Makes the rename durable; best effort (directories cannot be opened for fsync on every platform). */
async function syncDir(dir: string): Promise<void> {
  try {
    const h = await open(dir, 'r');
    try { await h.sync(); } finally { await h.close(); }
  } catch {
    // ignored: the data itself is already synced
  }
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(() => true, () => false);
}

/**
 * A checkpoint folder as CheckpointFiles: a missing file reads as null; a missing folder, or one that is
 * not a folder, is an error naming it.
 */
export function folderFiles(asked: string): CheckpointFiles {
  // a crash between the two renames of a replacement leaves the complete checkpoint beside `asked`
  const dir = findCheckpointDir(asked);
  let checked: Promise<void> | null = null;
  const checkDir = () => (checked ??= stat(dir).then(
    (s) => { if (!s.isDirectory()) throw new Error(`Checkpoint ${dir} is not a directory`); },
    (err) => { throw fileError('Cannot open checkpoint directory', dir, err); },
  ));
  return {
    location: dir,
    path: (name) => join(dir, name),
    async read(name) {
      await checkDir();
      const path = join(dir, name);
      if (!(await exists(path))) return null;
      return readFileBytes(path);
    },
  };
}

/** Writes a checkpoint's files into `dir` (created if needed), each atomically, in the given order (config.json last). */
export function folderWriter(dir: string): CheckpointWriter {
  return {
    async write(files) {
      try {
        await mkdir(dir, { recursive: true });
      } catch (err) {
        throw fileError('Cannot create checkpoint directory', dir, err);
      }
      for (const [name, data] of files) await writeFileAtomic(join(dir, name), data);
    },
  };
}

/**
 * A checkpoint folder replaced as a whole (src/train/checkpoint.ts replaceDir) passes through two
 * hidden siblings: `.<name>.tmp-*`, the new one being written, complete once its config.json (written
 * last) is there, and `.<name>.old-*`, the previous one moved aside until the new one is renamed in.
 */
export function replacementDir(dir: string, kind: 'tmp' | 'old'): string {
  return join(dirname(dir), `.${basename(dir)}.${kind}-${process.pid}-${randomBytes(4).toString('hex')}`);
}

/**
 * `dir`, or where a crash between the two renames of a replacement left it missing, the complete
 * checkpoint beside it: the new one, else the old one (the trainer clears such leftovers before it
 * writes again, so there is at most one of each). `dir` itself when there is none.
 */
export function findCheckpointDir(dir: string): string {
  if (existsSync(dir)) return dir;
  const parent = dirname(dir), prefix = `.${basename(dir)}.`;
  let names: string[];
  try {
    names = readdirSync(parent);
  } catch {
    return dir;
  }
  const complete = (kind: 'tmp' | 'old') => names
    .filter((f) => f.startsWith(`${prefix}${kind}-`))
    .map((f) => join(parent, f, CONFIG_FILE))
    .filter((config) => existsSync(config))
    .map((config) => dirname(config));
  return complete('tmp')[0] ?? complete('old')[0] ?? dir;
}

/** Reads an HF checkpoint folder: config.json (ViTConfig) and model.safetensors. */
export function readCheckpointDir(dir: string): Promise<Checkpoint> {
  return readCheckpoint(folderFiles(dir));
}

/**
 * Writes config.json and model.safetensors (metadata {"format": "pt"}, which transformers requires)
 * plus any extra files into `dir` (created if needed), each atomically; config.json goes last.
 */
export async function writeCheckpointDir(
  dir: string,
  config: ViTConfig,
  tensors: Map<string, { dtype: 'F32'; shape: readonly number[]; data: Float32Array }>,
  extraFiles: Record<string, Uint8Array | string> = {},
): Promise<void> {
  await folderWriter(dir).write(checkpointBytes(config, tensors, extraFiles));
}
