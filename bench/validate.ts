// Kernels against their float64 references (src/ref): seeded inputs, the error measures and their
// tolerances, and the op-vs-reference check that bench:kernels runs before timing a kernel and the
// tests run over their shapes and variants.
import { rng, gaussian } from '../src/data/random.ts';
import { tidy } from '../src/tensor.ts';

/** n standard-normal floats (seeded), times `scale`. */
export function randn(n: number, seed: number, scale = 1): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => scale * gaussian(r));
}

export interface Diff { relL2: number; nmax: number; maxAbs: number; worstIndex: number }

/** Relative L2 error, and the largest error relative to the largest reference value (nmax). */
export function diff(got: ArrayLike<number>, want: ArrayLike<number>): Diff {
  if (got.length !== want.length) throw new Error(`length ${got.length} != expected ${want.length}`);
  let num = 0, den = 0, maxAbs = 0, maxRef = 0, worstIndex = -1;
  for (let i = 0; i < want.length; i++) {
    const d = got[i] - want[i];
    if (!Number.isFinite(got[i])) return { relL2: Infinity, nmax: Infinity, maxAbs: Infinity, worstIndex: i };
    num += d * d;
    den += want[i] * want[i];
    if (Math.abs(d) > maxAbs) { maxAbs = Math.abs(d); worstIndex = i; }
    maxRef = Math.max(maxRef, Math.abs(want[i]));
  }
  return {
    relL2: den > 0 ? Math.sqrt(num / den) : Math.sqrt(num),
    nmax: maxRef > 0 ? maxAbs / maxRef : maxAbs,
    maxAbs, worstIndex,
  };
}

/** Limits on relL2 and, where given, on nmax. */
export interface Tolerance { relL2: number; nmax?: number }

export interface Check {
  name: string;
  diff: Diff;
  tol: Tolerance;
  ok: boolean;
  /** both measures against their limits and the worst element */
  message: string;
}

/** One result against its reference. */
export function check(name: string, got: ArrayLike<number>, want: ArrayLike<number>, tol: Tolerance): Check {
  const d = diff(got, want);
  const ok = d.relL2 <= tol.relL2 && (tol.nmax === undefined || d.nmax <= tol.nmax);
  const i = d.worstIndex;
  const message = `${name}: relL2 ${d.relL2.toExponential(2)} (limit ${tol.relL2}), nmax ${d.nmax.toExponential(2)}` +
    `${tol.nmax === undefined ? '' : ` (limit ${tol.nmax})`}; worst at [${i}]: got ${got[i]}, expected ${want[i]}`;
  return { name, diff: d, tol, ok, message };
}

/** Throws with both measures and the worst element when outside the tolerances. */
export function assertClose(name: string, got: ArrayLike<number>, want: ArrayLike<number>, tol: Tolerance): Diff {
  const c = check(name, got, want, tol);
  if (!c.ok) throw new Error(c.message);
  return c.diff;
}

/** Named arrays: an op's outputs (read back), or its reference's. */
export type Outputs = Record<string, ArrayLike<number>>;

/** An op and its reference, on the same inputs. */
export interface OpRun {
  op(): Outputs | Promise<Outputs>;
  reference(): Outputs | Promise<Outputs>;
}

/**
 * Runs the op, then its reference, and checks each output the reference gives against the op's of
 * the same name (`tol` for all, or by output name); names are `prefix` + the output's.
 */
export async function checkRun(run: OpRun, tol: Tolerance | Record<string, Tolerance>, prefix = ''): Promise<Check[]> {
  const got = await run.op();
  const want = await run.reference();
  return Object.entries(want).map(([name, w]) => {
    const g = got[name];
    if (!g) throw new Error(`${prefix}${name}: the op gave no output of that name (it gave ${Object.keys(got).join(', ')})`);
    const t = 'relL2' in tol ? (tol as Tolerance) : (tol as Record<string, Tolerance>)[name];
    if (!t) throw new Error(`${prefix}${name}: no tolerance for this output`);
    return check(`${prefix}${name}`, g, w, t);
  });
}

/**
 * The op-vs-reference check over shapes x variants: `prepare(shape, variant)` makes seeded inputs
 * and returns the op and its reference on them (each case in its own tidy scope). Throws naming every
 * output out of tolerance.
 */
export async function assertOp<S, V = undefined>(spec: {
  name: string;
  shapes: readonly S[];
  variants?: readonly V[];
  prepare(shape: S, variant: V): OpRun;
  tol: Tolerance | Record<string, Tolerance>;
  /** how a case is named in messages (default: the shape and variant as JSON) */
  label?(shape: S, variant: V): string;
}): Promise<void> {
  const failures: string[] = [];
  for (const variant of spec.variants ?? [undefined as V]) {
    for (const shape of spec.shapes) {
      const label = spec.label?.(shape, variant) ?? `${JSON.stringify(shape)}${variant === undefined ? '' : ` ${JSON.stringify(variant)}`}`;
      const checks = await tidy(() => checkRun(spec.prepare(shape, variant), spec.tol, `${spec.name} ${label} `));
      for (const c of checks) if (!c.ok) failures.push(c.message);
    }
  }
  if (failures.length) throw new Error(failures.join('\n'));
}
