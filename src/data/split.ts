// Stratified, seeded train/validation split: each class contributes round(n_c * valFraction)
// items to validation (at least one when the class has two or more items and valFraction > 0),
// chosen by a seeded shuffle. Both halves keep the input order.
import type { DataItem } from './layouts.ts';
import { mixSeed, rng, shuffleInPlace } from './random.ts';

export function stratifiedSplit<T extends DataItem>(items: T[], valFraction: number, seed = 0): { train: T[]; val: T[] } {
  if (!(valFraction >= 0 && valFraction < 1)) throw new RangeError(`val_split must be in [0, 1), got ${valFraction}`);
  const byClass = new Map<number, number[]>();
  items.forEach((it, i) => {
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
