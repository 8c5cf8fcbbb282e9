// Finding labelled images in a folder. Three layouts, detected in this order:
//  - 'petimages':     Microsoft's archive, <dir>/PetImages/{Cat,Dog}/*.jpg (or <dir> is PetImages itself)
//  - 'class-folders': one sub-folder per class, any number of classes, searched recursively;
//                     sorted folder names give the label indices (like torchvision ImageFolder)
//  - 'kaggle-flat':   Kaggle's flat folder, cat.123.jpg / dog.45.jpg: the label is the file name
//                     before its first dot
// Only .jpg/.jpeg/.png files count (case-insensitive); everything else (Thumbs.db, readme) is
// ignored. Whether a file really decodes is the loader's business.
import { readdirSync, statSync, type Dirent } from 'node:fs';
import { basename, join, resolve } from 'node:path';

export interface DataItem {
  path: string;
  label: number;
}

export type LayoutKind = 'petimages' | 'class-folders' | 'kaggle-flat';

export interface Dataset {
  /** Class names; label i is classes[i]. */
  classes: string[];
  items: DataItem[];
  layout: LayoutKind;
  /** The folder the items were found in (absolute). */
  root: string;
}

export class DatasetError extends Error {
  constructor(readonly dir: string, message: string) {
    super(message);
    this.name = 'DatasetError';
  }
}

const IMAGE_EXT = /\.(jpe?g|png)$/i;
const KAGGLE_NAME = /^([^.]+)\.[^.].*\.[^.]+$/; // label.anything.ext

export function isImageFileName(name: string): boolean {
  return IMAGE_EXT.test(name);
}

// Code-unit order, independent of locale.
const byName = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

function listDir(dir: string): Dirent[] {
  return readdirSync(dir, { withFileTypes: true })
    .filter((e) => !e.name.startsWith('.'))
    .sort((a, b) => byName(a.name, b.name));
}

function isDir(e: Dirent, parent: string): boolean {
  if (e.isDirectory()) return true;
  if (!e.isSymbolicLink()) return false;
  try {
    return statSync(join(parent, e.name)).isDirectory();
  } catch {
    return false;
  }
}

/** All image files under dir, recursively, sorted. */
function imagesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const e of listDir(dir)) {
    const p = join(dir, e.name);
    if (isDir(e, dir)) out.push(...imagesUnder(p));
    else if (isImageFileName(e.name)) out.push(p);
  }
  return out;
}

function classFolders(root: string, layout: LayoutKind): Dataset {
  const classes: string[] = [];
  const items: DataItem[] = [];
  for (const e of listDir(root)) {
    if (!isDir(e, root)) continue;
    const files = imagesUnder(join(root, e.name));
    if (files.length === 0) continue; // not a class folder
    const label = classes.push(e.name) - 1;
    for (const path of files) items.push({ path, label });
  }
  return { classes, items, layout, root };
}

/** Detect the layout of `dir` and list its labelled images. Throws DatasetError when nothing is found. */
export function scanDataset(dir: string): Dataset {
  const root = resolve(dir);
  let entries: Dirent[];
  try {
    if (!statSync(root).isDirectory()) throw new Error('not a directory');
    entries = listDir(root);
  } catch (e) {
    throw new DatasetError(root, `data folder ${root} cannot be read: ${(e as Error).message}`);
  }
  const sub = entries.find((e) => e.name === 'PetImages' && isDir(e, root));
  if (sub) return nonEmpty(classFolders(join(root, 'PetImages'), 'petimages'));
  if (basename(root) === 'PetImages') return nonEmpty(classFolders(root, 'petimages'));

  const folders = classFolders(root, 'class-folders');
  if (folders.items.length > 0) return folders;

  const labels = new Map<string, string[]>();
  let unlabelled = 0;
  for (const e of entries) {
    if (isDir(e, root) || !isImageFileName(e.name)) continue;
    const m = KAGGLE_NAME.exec(e.name);
    if (!m) {
      unlabelled++;
      continue;
    }
    if (!labels.has(m[1])) labels.set(m[1], []);
    labels.get(m[1])!.push(join(root, e.name));
  }
  if (labels.size === 0 && unlabelled > 0) {
    throw new DatasetError(root, `data folder ${root} has ${unlabelled} images but no labels: expected class sub-folders or names like cat.1.jpg`);
  }
  const classes = [...labels.keys()].sort(byName);
  const items = classes.flatMap((c, label) => labels.get(c)!.map((path) => ({ path, label })));
  items.sort((a, b) => byName(a.path, b.path));
  return nonEmpty({ classes, items, layout: 'kaggle-flat', root });
}

function nonEmpty(d: Dataset): Dataset {
  if (d.items.length === 0) {
    throw new DatasetError(d.root, `data folder ${d.root} has no images (.jpg, .jpeg, .png), neither in class sub-folders nor named like cat.1.jpg`);
  }
  return d;
}
