// Node-only file IO: reading bytes, atomic writes, and HF-style checkpoint folders
// (config.json + model.safetensors).
import { existsSync, readdirSync } from 'node:fs';
import { open, readFile, rename, rm, mkdir, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { parseSafetensors, serializeSafetensors, type SafeTensor } from './safetensors.ts';
import { ViTConfig } from '../vit/config.ts';

export const CONFIG_FILE = 'config.json';
export const WEIGHTS_FILE = 'model.safetensors';

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

export interface Checkpoint {
  config: ViTConfig;
  tensors: Map<string, SafeTensor>;
  configPath: string;
  weightsPath: string;
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
export async function readCheckpointDir(dir: string): Promise<Checkpoint> {
  dir = findCheckpointDir(dir);
  const dirStat = await stat(dir).catch((err) => { throw fileError('Cannot open checkpoint directory', dir, err); });
  if (!dirStat.isDirectory()) throw new Error(`Checkpoint ${dir} is not a directory`);

  const configPath = join(dir, CONFIG_FILE);
  const weightsPath = join(dir, WEIGHTS_FILE);
  if (!(await exists(configPath))) {
    throw new Error(`Checkpoint directory ${dir} has no ${CONFIG_FILE} (looked for ${configPath})`);
  }
  if (!(await exists(weightsPath))) {
    const hint = (await exists(join(dir, 'model.safetensors.index.json')))
      ? '; sharded checkpoints (model.safetensors.index.json) are not supported'
      : (await exists(join(dir, 'pytorch_model.bin')))
        ? '; only safetensors weights are supported, not pytorch_model.bin'
        : '';
    throw new Error(`Checkpoint directory ${dir} has no ${WEIGHTS_FILE} (looked for ${weightsPath})${hint}`);
  }

  const configText = new TextDecoder().decode(await readFileBytes(configPath));
  let configJson: unknown;
  try {
    configJson = JSON.parse(configText);
  } catch (err) {
    throw new Error(`${configPath}: invalid JSON (${(err as Error).message})`, { cause: err });
  }
  const config = ViTConfig.fromJSON(configJson, configPath);
  const { tensors } = parseSafetensors(await readFileBytes(weightsPath), weightsPath);
  return { config, tensors, configPath, weightsPath };
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
  for (const name of Object.keys(extraFiles)) {
    if (name === CONFIG_FILE || name === WEIGHTS_FILE || !/^[^/\\]+$/.test(name) || name === '.' || name === '..') {
      throw new Error(`writeCheckpointDir: invalid extra file name ${JSON.stringify(name)} (a plain file name other than ${CONFIG_FILE} and ${WEIGHTS_FILE})`);
    }
  }
  const weights = serializeSafetensors(tensors, { format: 'pt' });
  const configText = JSON.stringify(config.toJSON(), null, 2) + '\n';
  try {
    await mkdir(dir, { recursive: true });
  } catch (err) {
    throw fileError('Cannot create checkpoint directory', dir, err);
  }
  for (const [name, data] of Object.entries(extraFiles)) await writeFileAtomic(join(dir, name), data);
  await writeFileAtomic(join(dir, WEIGHTS_FILE), weights);
  await writeFileAtomic(join(dir, CONFIG_FILE), configText);
}
