// Shared test helpers: one device for the whole run, seeded data, comparisons that say where they fail.
import '../src/node.ts'; // Node's platform (Dawn) and autotune cache
import * as assert from 'uvu/assert';
import { Device } from '../src/gpu/device.ts';
import { Tensor, tidy } from '../src/tensor.ts';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { rng } from '../src/data/random.ts';
import { randn } from '../bench/validate.ts';

export { rng };
// seeded data and comparisons against the references live with bench:kernels, which validates with them too
export { randn, diff, assertClose, assertOp, type Diff, type Tolerance } from '../bench/validate.ts';

export const SHARED = new URL('../../shared/', import.meta.url).pathname;

export async function setupDevice(): Promise<Device> {
  if (Device.hasDefault) return Device.default;
  return Device.create({ debug: process.env.VITCATS_DEBUG === '1' });
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

/** Every file under dir with its content hash (to show nothing changed). */
export function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const e of readdirSync(d)) {
      const p = join(d, e);
      if (statSync(p).isDirectory()) walk(p);
      else out[p.slice(dir.length)] = createHash('sha1').update(readFileSync(p)).digest('hex');
    }
  };
  walk(dir);
  return out;
}

/** The entry points (shader:entry) that the synchronous `fn` dispatches on `device`, in order. */
export function dispatchedEntries(device: Device, fn: () => void): string[] {
  const entries: string[] = [];
  const raw = device.dispatch;
  device.dispatch = (d) => {
    entries.push(`${d.shader.name}:${d.entry}`);
    raw.call(device, d);
  };
  try {
    fn();
  } finally {
    device.dispatch = raw;
  }
  return entries;
}
