// Plain TypeScript float64 references for softmax and softmax cross-entropy (torch semantics).

/** Softmax over rows of x viewed as [rows, cols]. */
export function softmaxRef(x: ArrayLike<number>, rows: number, cols: number): Float64Array {
  const out = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    let m = -Infinity;
    for (let c = 0; c < cols; c++) m = Math.max(m, x[r * cols + c]);
    let s = 0;
    for (let c = 0; c < cols; c++) s += Math.exp(x[r * cols + c] - m);
    for (let c = 0; c < cols; c++) out[r * cols + c] = Math.exp(x[r * cols + c] - m) / s;
  }
  return out;
}

/** The smoothed target distribution of one row: (1 - s) * onehot(label) + s / cols. */
function target(label: number, c: number, cols: number, smoothing: number): number {
  return smoothing / cols + (c === label ? 1 - smoothing : 0);
}

/** torch nn.CrossEntropyLoss(reduction='mean', label_smoothing) of logits [rows, cols]. */
export function crossEntropyRef(
  logits: ArrayLike<number>, labels: ArrayLike<number>, rows: number, cols: number, smoothing = 0,
): number {
  let total = 0;
  for (let r = 0; r < rows; r++) {
    let m = -Infinity;
    for (let c = 0; c < cols; c++) m = Math.max(m, logits[r * cols + c]);
    let s = 0;
    for (let c = 0; c < cols; c++) s += Math.exp(logits[r * cols + c] - m);
    const logSum = Math.log(s);
    for (let c = 0; c < cols; c++) {
      const logProb = logits[r * cols + c] - m - logSum;
      total -= target(labels[r], c, cols, smoothing) * logProb;
    }
  }
  return total / rows;
}

/** Gradient of crossEntropyRef with respect to the logits, times dloss. */
export function crossEntropyBackwardRef(
  logits: ArrayLike<number>, labels: ArrayLike<number>, rows: number, cols: number, smoothing = 0, dloss = 1,
): Float64Array {
  const p = softmaxRef(logits, rows, cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      p[r * cols + c] = ((p[r * cols + c] - target(labels[r], c, cols, smoothing)) / rows) * dloss;
    }
  }
  return p;
}
