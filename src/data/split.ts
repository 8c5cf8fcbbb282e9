// Stratified, seeded train/validation split: each class contributes round(n_c * valFraction)
// items to validation (at least one when the class has two or more items and valFraction > 0),
// chosen by a seeded shuffle. Both halves keep the input order. A file is in one half only: the
// items must name each file once (scanDataset lists each real file once), and a separate
// validation folder must not share files with the training folder (assertSeparateDatasets).
import { DatasetError, type DataItem, type Dataset } from './layouts.ts';
import { mixSeed, rng, shuffleInPlace } from './random.ts';

export function stratifiedSplit<T extends DataItem>(items: T[], valFraction: number, seed = 0): { train: T[]; val: T[] } {
  if (!(valFraction >= 0 && valFraction < 1)) throw new RangeError(`val_split must be in [0, 1), got ${valFraction}`);
  const byClass = new Map<number, number[]>();
  const seen = new Set<string>();
  items.forEach((it, i) => {
    if (seen.has(it.path)) throw new RangeError(`${it.path} is listed twice: each file must appear once, or it could land in both the training and the validation split`);
    seen.add(it.path);
    if (!byClass.has(it.label)) byClass.set(it.label, []);
    byClass.get(it.label)!.push(i);
  });
  const isVal = new Uint8Array(items.length);
  for (const [label, idx] of [...byClass].sort((a, b) => a[0] - b[0])) {
    let nVal = Math.round(idx.length * valFraction);
    if (valFraction > 0 && idx.length >= 2) nVal = Math.min(Math.max(nVal, 1), idx.length - 1);
    shuffleInPlace(idx, rng(mixSeed(seed, label, 0x5b1)));
    for (let k = 0; k < nVal; k++) isVal[idx[k]] = 1;
  }
  return { train: items.filter((_, i) => !isVal[i]), val: items.filter((_, i) => isVal[i]) };
}

/**
 * Throws a DatasetError when a separate validation set shares files (by real path, through links
 * or the same folder given twice) with the training set: those would be trained on and then
 * "validated", overstating val_acc. An error rather than a silent drop, so both folders stay what
 * the user thinks they are.
 */
export function assertSeparateDatasets(train: Dataset, val: Dataset): void {
  const trainPath = new Map(train.realPaths.map((r, i) => [r, train.items[i].path]));
  const shared: string[] = [];
  val.realPaths.forEach((r, i) => {
    const t = trainPath.get(r);
    if (t !== undefined) shared.push(`${val.items[i].path} = ${t}`);
  });
  if (shared.length === 0) return;
  throw new DatasetError(val.root,
    `the validation folder ${val.root} and the training folder ${train.root} share ${shared.length} file${shared.length === 1 ? '' : 's'} ` +
    `(${shared.slice(0, 3).join('; ')}${shared.length > 3 ? '; ...' : ''}): validation images must not be trained on. ` +
    'Remove them from one folder, or leave val_dir unset to hold out val_split of the training folder.');
}
