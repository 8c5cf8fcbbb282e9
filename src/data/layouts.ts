// Finding labelled images in a folder. Three layouts, detected in this order:
//  - 'petimages':     Microsoft's archive, <dir>/PetImages/{Cat,Dog}/*.jpg (or <dir> is PetImages itself)
//  - 'class-folders': one sub-folder per class, any number of classes, searched recursively;
//                     sorted folder names give the label indices (like torchvision ImageFolder)
//  - 'kaggle-flat':   Kaggle's flat folder, cat.123.jpg / dog.45.jpg: the label is the file name
//                     before its first dot
// Only .jpg/.jpeg/.png files count (case-insensitive); everything else (Thumbs.db, readme) is
// ignored. Whether a file really decodes is the loader's business.
//
// Links: a linked folder inside a class folder is followed only when its target lies inside that
// class folder too, and only once (so `cats/up -> ..` neither loops nor pulls the dogs in as cats);
// the others are skipped with a warning. A linked file may point anywhere. Every file counts once
// by its real path; one file in two classes is an error, since its label would be ambiguous.
import { readdirSync, realpathSync, statSync, type Dirent } from 'node:fs';
import { basename, join, resolve, sep } from 'node:path';

export interface DataItem {
  path: string;
  label: number;
}

export type LayoutKind = 'petimages' | 'class-folders' | 'kaggle-flat';

export interface Dataset {
  /** Class names; label i is classes[i]. */
  classes: string[];
  items: DataItem[];
  /** The real path (links resolved) of each item, in the same order. */
  realPaths: string[];
  layout: LayoutKind;
  /** The folder the items were found in (absolute). */
  root: string;
  /** Links that were not followed, for the user to see. */
  warnings: string[];
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

interface Found {
  path: string;
  real: string;
}

/** Real path of a link's target and whether it is a folder; null for a broken link. */
function follow(path: string): { real: string; dir: boolean } | null {
  try {
    const real = realpathSync(path);
    return { real, dir: statSync(real).isDirectory() };
  } catch {
    return null;
  }
}

/**
 * The image files under a class folder, recursively, sorted (links after the plain entries of each
 * folder, so a file is listed under its own folder rather than a link's). `real` is the folder's real
 * path; folders already walked (`seen`) are not walked again.
 */
function imagesUnder(dir: string, real: string, classReal: string, seen: Set<string>, out: Found[], warnings: string[]): void {
  const entries = listDir(dir);
  for (const e of [...entries.filter((x) => !x.isSymbolicLink()), ...entries.filter((x) => x.isSymbolicLink())]) {
    const path = join(dir, e.name);
    if (e.isSymbolicLink()) {
      const target = follow(path);
      if (!target) {
        if (isImageFileName(e.name)) out.push({ path, real: path }); // broken: the loader reports it
      } else if (!target.dir) {
        if (isImageFileName(e.name)) out.push({ path, real: target.real });
      } else if (target.real !== classReal && !target.real.startsWith(classReal + sep)) {
        warnings.push(`${path} -> ${target.real}`);
      } else if (!seen.has(target.real)) {
        seen.add(target.real);
        imagesUnder(path, target.real, classReal, seen, out, warnings);
      }
    } else if (e.isDirectory()) {
      const r = join(real, e.name);
      if (!seen.has(r)) {
        seen.add(r);
        imagesUnder(path, r, classReal, seen, out, warnings);
      }
    } else if (isImageFileName(e.name)) {
      out.push({ path, real: join(real, e.name) });
    }
  }
}

/** The dataset from files found per class: each real file once; one in two classes is an error. */
function assemble(root: string, layout: LayoutKind, classes: string[], found: Found[][], linkWarnings: string[]): Dataset {
  const owner = new Map<string, { path: string; label: number }>();
  const conflicts: string[] = [];
  const items: DataItem[] = [], realPaths: string[] = [];
  found.forEach((files, label) => {
    for (const f of files) {
      const first = owner.get(f.real);
      if (!first) {
        owner.set(f.real, { path: f.path, label });
        items.push({ path: f.path, label });
        realPaths.push(f.real);
      } else if (first.label !== label) {
        conflicts.push(`${first.path} (${classes[first.label]}) and ${f.path} (${classes[label]})`);
      }
    }
  });
  if (conflicts.length > 0) {
    throw new DatasetError(root, `data folder ${root}: ${conflicts.length} file(s) appear in two classes through links, so their label is ambiguous: ` +
      `${conflicts.slice(0, 5).join('; ')}${conflicts.length > 5 ? '; ...' : ''} are the same file. Keep each file in one class folder.`);
  }
  const warnings = linkWarnings.length === 0 ? [] : [
    `data folder ${root}: ${linkWarnings.length} linked folder(s) not followed, as they lead outside the class folder they are in ` +
    `(a loop, or another class's images): ${linkWarnings.slice(0, 5).join(', ')}${linkWarnings.length > 5 ? ', ...' : ''}`,
  ];
  return { classes, items, realPaths, layout, root, warnings };
}

function classFolders(root: string, layout: LayoutKind): Dataset {
  const classes: string[] = [];
  const found: Found[][] = [];
  const warnings: string[] = [];
  for (const e of listDir(root)) {
    if (!isDir(e, root)) continue;
    const dir = join(root, e.name), real = realpathSync(dir);
    const files: Found[] = [];
    imagesUnder(dir, real, real, new Set([real]), files, warnings);
    if (files.length === 0) continue; // not a class folder
    classes.push(e.name);
    found.push(files);
  }
  return assemble(root, layout, classes, found, warnings);
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

  const labels = new Map<string, Found[]>();
  let unlabelled = 0;
  const rootReal = realpathSync(root);
  for (const e of entries) {
    if (isDir(e, root) || !isImageFileName(e.name)) continue;
    const m = KAGGLE_NAME.exec(e.name);
    if (!m) {
      unlabelled++;
      continue;
    }
    const path = join(root, e.name);
    const real = e.isSymbolicLink() ? follow(path)?.real ?? path : join(rootReal, e.name);
    if (!labels.has(m[1])) labels.set(m[1], []);
    labels.get(m[1])!.push({ path, real });
  }
  if (labels.size === 0 && unlabelled > 0) {
    throw new DatasetError(root, `data folder ${root} has ${unlabelled} images but no labels: expected class sub-folders or names like cat.1.jpg`);
  }
  const classes = [...labels.keys()].sort(byName);
  const d = assemble(root, 'kaggle-flat', classes, classes.map((c) => labels.get(c)!), []);
  // File name order, as listed.
  const order = d.items.map((_, i) => i).sort((a, b) => byName(d.items[a].path, d.items[b].path));
  return nonEmpty({ ...d, items: order.map((i) => d.items[i]), realPaths: order.map((i) => d.realPaths[i]) });
}

function nonEmpty(d: Dataset): Dataset {
  if (d.items.length === 0) {
    throw new DatasetError(d.root, `data folder ${d.root} has no images (.jpg, .jpeg, .png), neither in class sub-folders nor named like cat.1.jpg`);
  }
  return d;
}
