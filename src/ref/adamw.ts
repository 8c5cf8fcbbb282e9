// Plain TypeScript float64 reference for one torch.optim.AdamW step.

export interface AdamWRefState {
  p: Float64Array;
  m: Float64Array;
  v: Float64Array;
  /** steps taken so far (0 before the first) */
  step: number;
}

export interface AdamWRefOptions { lr: number; betas: [number, number]; eps: number; weightDecay: number }

export function adamwRefInit(p: ArrayLike<number>): AdamWRefState {
  return { p: Float64Array.from(p), m: new Float64Array(p.length), v: new Float64Array(p.length), step: 0 };
}

/** One step in place. */
export function adamwRefStep(s: AdamWRefState, g: ArrayLike<number>, o: AdamWRefOptions): void {
  const [b1, b2] = o.betas;
  s.step++;
  const bc1 = 1 - b1 ** s.step;
  const bc2 = 1 - b2 ** s.step;
  for (let i = 0; i < s.p.length; i++) {
    s.p[i] *= 1 - o.lr * o.weightDecay;
    s.m[i] = b1 * s.m[i] + (1 - b1) * g[i];
    s.v[i] = b2 * s.v[i] + (1 - b2) * g[i] * g[i];
    const denom = Math.sqrt(s.v[i]) / Math.sqrt(bc2) + o.eps;
    s.p[i] -= (o.lr / bc1) * s.m[i] / denom;
  }
}
