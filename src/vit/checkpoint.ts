// Hugging Face checkpoints (config.json + model.safetensors) from wherever their files are: a URL
// (fetched), files in memory (a browser's picked or dropped File objects, byte arrays), or, in Node, a
// folder on disk (the Node entry registers that through registerCheckpointFolders). Platform-neutral.
import { parseSafetensors, serializeSafetensors, type SafeTensor } from '../io/safetensors.ts';
import { ViTConfig } from './config.ts';

export const CONFIG_FILE = 'config.json';
export const WEIGHTS_FILE = 'model.safetensors';

/** Read access to the files of one checkpoint. */
export interface CheckpointFiles {
  /** where the files are (a folder, a URL), for messages */
  readonly location: string;
  /** how to name one file in messages */
  path(name: string): string;
  /** the file's bytes, or null where it does not exist */
  read(name: string): Promise<Uint8Array | null>;
}

/** Where a checkpoint is written: all files at once, `config.json` last (readers take its presence as "complete"). */
export interface CheckpointWriter {
  write(files: ReadonlyMap<string, Uint8Array>): Promise<void>;
}

type FileLike = Uint8Array | ArrayBuffer | { arrayBuffer(): Promise<ArrayBuffer>; name?: string };

/**
 * A checkpoint's whereabouts: a folder path (Node), a URL (fetched; relative URLs resolve against the
 * page), files in memory keyed by name (or File objects with names, as a file picker gives them), or
 * a CheckpointFiles.
 */
export type CheckpointSource =
  | string | URL | CheckpointFiles
  | Readonly<Record<string, FileLike>> | ReadonlyMap<string, FileLike> | readonly (FileLike & { name: string })[];

interface FolderAccess {
  open(dir: string): CheckpointFiles;
  writer(dir: string): CheckpointWriter;
}

let folders: FolderAccess | null = null;

/** How folder paths are read and written (the Node entry registers its file system). */
export function registerCheckpointFolders(access: FolderAccess): void {
  folders = access;
}

const isUrlText = (s: string) => /^[a-z][a-z0-9+.-]*:/i.test(s) && !/^[a-z]:[\\/]/i.test(s);

function pageBase(): string | undefined {
  return (globalThis as { location?: { href?: string } }).location?.href;
}

/** Files under a base URL, fetched; a 404 is a missing file. */
export function urlFiles(url: string | URL): CheckpointFiles {
  const base = new URL(String(url).replace(/\/?$/, '/'), pageBase());
  const path = (name: string) => new URL(name, base).href;
  return {
    location: base.href,
    path,
    async read(name) {
      let res: Response;
      try {
        res = await fetch(path(name));
      } catch (e) {
        throw new Error(`Cannot fetch ${path(name)}: ${(e as Error).message}`, { cause: e });
      }
      if (res.status === 404) return null;
      if (!res.ok) throw new Error(`Cannot fetch ${path(name)}: HTTP ${res.status} ${res.statusText}`);
      return new Uint8Array(await res.arrayBuffer());
    },
  };
}

/** Files held in memory, by name. */
export function memoryFiles(files: CheckpointSource & object, location = 'the given files'): CheckpointFiles {
  const byName = new Map<string, FileLike>();
  if (Array.isArray(files)) for (const f of files) byName.set(f.name, f);
  else if (files instanceof Map) for (const [k, v] of files) byName.set(k, v);
  else for (const [k, v] of Object.entries(files as Record<string, FileLike>)) byName.set(k, v);
  return {
    location,
    path: (name) => `${location}/${name}`,
    async read(name) {
      const f = byName.get(name);
      if (f === undefined) return null;
      if (f instanceof Uint8Array) return f;
      if (f instanceof ArrayBuffer) return new Uint8Array(f);
      return new Uint8Array(await f.arrayBuffer());
    },
  };
}

/** The CheckpointFiles of a source (see CheckpointSource). */
export function checkpointFiles(source: CheckpointSource): CheckpointFiles {
  if (source instanceof URL) return urlFiles(source);
  if (typeof source === 'string') {
    if (isUrlText(source)) return urlFiles(source);
    if (folders) return folders.open(source);
    if (pageBase()) return urlFiles(source);
    throw new Error(`Cannot open checkpoint ${source}: no file system here (in Node import the package's Node entry)`);
  }
  if ('read' in source && typeof source.read === 'function') return source as CheckpointFiles;
  return memoryFiles(source);
}

export interface Checkpoint {
  config: ViTConfig;
  tensors: Map<string, SafeTensor>;
  configPath: string;
  weightsPath: string;
}

/** Reads config.json (as a ViTConfig) and model.safetensors, with errors naming the file. */
export async function readCheckpoint(files: CheckpointFiles): Promise<Checkpoint> {
  const configPath = files.path(CONFIG_FILE);
  const weightsPath = files.path(WEIGHTS_FILE);
  const configBytes = await files.read(CONFIG_FILE);
  if (!configBytes) throw new Error(`Checkpoint ${files.location} has no ${CONFIG_FILE} (looked for ${configPath})`);
  const weights = await files.read(WEIGHTS_FILE);
  if (!weights) {
    const hint = (await files.read('model.safetensors.index.json').catch(() => null))
      ? '; sharded checkpoints (model.safetensors.index.json) are not supported'
      : (await files.read('pytorch_model.bin').catch(() => null))
        ? '; only safetensors weights are supported, not pytorch_model.bin'
        : '';
    throw new Error(`Checkpoint ${files.location} has no ${WEIGHTS_FILE} (looked for ${weightsPath})${hint}`);
  }
  let configJson: unknown;
  try {
    configJson = JSON.parse(new TextDecoder().decode(configBytes));
  } catch (err) {
    throw new Error(`${configPath}: invalid JSON (${(err as Error).message})`, { cause: err });
  }
  const config = ViTConfig.fromJSON(configJson, configPath);
  const { tensors } = parseSafetensors(weights, weightsPath);
  return { config, tensors, configPath, weightsPath };
}

/**
 * The files of a checkpoint: extra files, model.safetensors (metadata {"format": "pt"}, which
 * transformers requires), then config.json, in the order a writer should write them.
 */
export function checkpointBytes(
  config: ViTConfig,
  tensors: Map<string, { dtype: 'F32'; shape: readonly number[]; data: Float32Array }>,
  extraFiles: Record<string, Uint8Array | string> = {},
): Map<string, Uint8Array> {
  const files = new Map<string, Uint8Array>();
  for (const [name, data] of Object.entries(extraFiles)) {
    if (name === CONFIG_FILE || name === WEIGHTS_FILE || !/^[^/\\]+$/.test(name) || name === '.' || name === '..') {
      throw new Error(`invalid extra file name ${JSON.stringify(name)} (a plain file name other than ${CONFIG_FILE} and ${WEIGHTS_FILE})`);
    }
    files.set(name, typeof data === 'string' ? new TextEncoder().encode(data) : data);
  }
  files.set(WEIGHTS_FILE, serializeSafetensors(tensors, { format: 'pt' }));
  files.set(CONFIG_FILE, new TextEncoder().encode(JSON.stringify(config.toJSON(), null, 2) + '\n'));
  return files;
}

/** A writer for a folder path (Node) or a CheckpointWriter as it is. */
export function checkpointWriter(target: string | CheckpointWriter): CheckpointWriter {
  if (typeof target !== 'string') return target;
  if (!folders) {
    throw new Error(`Cannot save to ${target}: no file system here; in a browser use model.pretrainedFiles() and offer them as downloads`);
  }
  return folders.writer(target);
}
