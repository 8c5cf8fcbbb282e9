// Plain TypeScript float64 reference for LayerNorm over the last axis (x viewed as [rows, d]).

export interface LayerNormRefResult { y: Float64Array; mean: Float64Array; rstd: Float64Array }

export function layerNormRef(
  x: ArrayLike<number>, weight: ArrayLike<number>, bias: ArrayLike<number>, rows: number, d: number, eps: number,
): LayerNormRefResult {
  const y = new Float64Array(rows * d);
  const mean = new Float64Array(rows);
  const rstd = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    const base = r * d;
    let s = 0;
    for (let c = 0; c < d; c++) s += x[base + c];
    const m = s / d;
    let sq = 0;
    for (let c = 0; c < d; c++) sq += (x[base + c] - m) ** 2;
    const rs = 1 / Math.sqrt(sq / d + eps);
    for (let c = 0; c < d; c++) y[base + c] = (x[base + c] - m) * rs * weight[c] + bias[c];
    mean[r] = m;
    rstd[r] = rs;
  }
  return { y, mean, rstd };
}

export interface LayerNormGradRef { dx: Float64Array; dweight: Float64Array; dbias: Float64Array }

/** `pending`: a gradient x already has from elsewhere, added to dx (as the accumulating backward kernel does). */
export function layerNormBackwardRef(
  x: ArrayLike<number>, weight: ArrayLike<number>, dy: ArrayLike<number>, rows: number, d: number, eps: number,
  pending: ArrayLike<number> | null = null,
): LayerNormGradRef {
  const { mean, rstd } = layerNormRef(x, weight, new Float64Array(d), rows, d, eps);
  const dx = new Float64Array(rows * d);
  const dweight = new Float64Array(d);
  const dbias = new Float64Array(d);
  for (let r = 0; r < rows; r++) {
    const base = r * d;
    let sumG = 0, sumGX = 0;
    for (let c = 0; c < d; c++) {
      const xhat = (x[base + c] - mean[r]) * rstd[r];
      const g = dy[base + c] * weight[c];
      sumG += g;
      sumGX += g * xhat;
      dweight[c] += dy[base + c] * xhat;
      dbias[c] += dy[base + c];
    }
    for (let c = 0; c < d; c++) {
      const xhat = (x[base + c] - mean[r]) * rstd[r];
      const g = dy[base + c] * weight[c];
      dx[base + c] = (pending ? pending[base + c] : 0) + rstd[r] * (g - sumG / d - xhat * sumGX / d);
    }
  }
  return { dx, dweight, dbias };
}
