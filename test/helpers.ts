// Shared test helpers: one device for the whole run, seeded data, comparisons that say where they fail.
import * as assert from 'uvu/assert';
import { Device } from '../src/gpu/device.ts';
import { Tensor, tidy } from '../src/tensor.ts';
import { rng } from '../src/data/random.ts';

export { rng };

export const SHARED = new URL('../../shared/', import.meta.url).pathname;

export async function setupDevice(): Promise<Device> {
  if (Device.hasDefault) return Device.default;
  return Device.create({ debug: process.env.VITCATS_DEBUG === '1' });
}

/** n standard-normal-ish floats (Box-Muller), times `scale`. */
export function randn(n: number, seed: number, scale = 1): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u = Math.max(r(), 1e-12);
    out[i] = scale * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * r());
  }
  return out;
}

export interface Diff { relL2: number; nmax: number; maxAbs: number; worstIndex: number }

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

/** Throws with name, both measures and the worst element when outside the tolerances. */
export function assertClose(
  name: string, got: ArrayLike<number>, want: ArrayLike<number>, tol: { relL2: number; nmax: number },
): Diff {
  const d = diff(got, want);
  if (!(d.relL2 <= tol.relL2 && d.nmax <= tol.nmax)) {
    const i = d.worstIndex;
    throw new Error(
      `${name}: relL2 ${d.relL2.toExponential(2)} (limit ${tol.relL2}), nmax ${d.nmax.toExponential(2)} (limit ${tol.nmax}); ` +
        `worst at [${i}]: got ${got[i]}, expected ${want[i]}`,
    );
  }
  return d;
}

/** Reads a tensor to a Float32Array. */
export const read = (t: Tensor) => t.toArray();

/**
 * Central finite differences of sum(f(x) * w) along a random direction, against the analytic
 * gradient of the same. `f` maps leaf tensors to one output; float32 on the GPU, so use modest
 * eps and tolerance.
 */
export async function gradCheck(
  name: string,
  inputs: { data: Float32Array; shape: number[] }[],
  f: (xs: Tensor[]) => Tensor,
  opts: { eps?: number; tol?: number; seed?: number } = {},
): Promise<void> {
  const eps = opts.eps ?? 1e-2;
  const tol = opts.tol ?? 2e-2;
  const { Tensor: T } = await import('../src/tensor.ts');
  const { mul } = await import('../src/ops/elementwise.ts');
  const { sum } = await import('../src/ops/reduce.ts');
  // analytic
  const leaves = inputs.map((inp) => T.fromArray(inp.data, inp.shape, { requiresGrad: true }));
  const outShape = tidy(() => f(leaves.map((l) => l)).shape);
  const w = randn(outShape.reduce((a, b) => a * b, 1), (opts.seed ?? 7) + 1);
  const wT = T.fromArray(w, outShape);
  await tidy(async () => {
    const loss = sum(mul(f(leaves), wT));
    loss.backward();
    await loss.item();
  });
  for (let k = 0; k < inputs.length; k++) {
    const dir = randn(inputs[k].data.length, (opts.seed ?? 7) + 10 + k);
    const g = await leaves[k].grad!.toArray();
    let analytic = 0;
    for (let i = 0; i < dir.length; i++) analytic += g[i] * dir[i];
    const evalAt = async (s: number) =>
      tidy(async () => {
        const xs = inputs.map((inp, j) => {
          if (j !== k) return T.fromArray(inp.data, inp.shape);
          const moved = Float32Array.from(inp.data, (v, i) => v + s * eps * dir[i]);
          return T.fromArray(moved, inp.shape);
        });
        return (await sum(mul(f(xs), wT)).toArray())[0];
      });
    const numeric = ((await evalAt(1)) - (await evalAt(-1))) / (2 * eps);
    const rel = Math.abs(numeric - analytic) / Math.max(Math.abs(numeric), Math.abs(analytic), 1e-3);
    if (!(rel <= tol)) {
      throw new Error(`${name}: finite-difference check of input ${k}: numeric ${numeric}, analytic ${analytic} (rel ${rel.toExponential(2)} > ${tol})`);
    }
  }
  for (const l of leaves) { l.grad?.dispose(); l.dispose(); }
  wT.dispose();
}

/**
 * An error check for uvu's `assert.throws`: the message must contain every part (text, or a
 * pattern it matches); on a mismatch the assertion shows the message.
 */
export function messageHas(...parts: (string | RegExp)[]): (e: Error) => boolean {
  return (e) => {
    for (const p of parts) {
      assert.ok(typeof p === 'string' ? e.message.includes(p) : p.test(e.message), `error "${e.message}" should contain ${p}`);
    }
    return true;
  };
}

/** `assert.throws` for a promise (uvu has none): it must reject with a message holding every part. */
export async function rejects(promise: Promise<unknown>, ...parts: (string | RegExp)[]): Promise<Error> {
  try {
    await promise;
  } catch (e) {
    messageHas(...parts)(e as Error);
    return e as Error;
  }
  return assert.unreachable(`expected a rejection with ${parts.join(', ')}`) as never;
}
