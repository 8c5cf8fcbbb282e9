// Plain TypeScript references for the matmul kernels (float64 accumulation).

export interface MatmulRefParams {
  M: number;
  N: number;
  K: number;
  batch?: number;
  transA?: boolean;
  transB?: boolean;
  /** elements between batch items; default M*K, K*N; 0 shares the operand */
  batchStrideA?: number;
  batchStrideB?: number;
  bias?: ArrayLike<number> | null;
  alpha?: number;
  /** added to the result (the accumulate-into case), [batch, M, N] */
  accumulateInto?: ArrayLike<number> | null;
  /** only these rows of each product (a bench checks big shapes on a few): the result is [batch, rows.length, N] */
  rows?: readonly number[];
}

/** out[i] = alpha * op(A[i]) op(B[i]) + bias + accumulateInto[i], as [batch, M, N] (or the given rows). */
export function matmulRef(a: ArrayLike<number>, b: ArrayLike<number>, p: MatmulRefParams): Float64Array {
  const { M, N, K } = p;
  const batch = p.batch ?? 1;
  const sA = p.batchStrideA ?? M * K, sB = p.batchStrideB ?? K * N;
  const alpha = p.alpha ?? 1;
  const rows = p.rows ?? Array.from({ length: M }, (_, m) => m);
  const out = new Float64Array(batch * rows.length * N);
  for (let i = 0; i < batch; i++) {
    rows.forEach((m, r) => {
      // one output row at a time, k outer: the same sums in the same order, over contiguous rows of B
      const row = out.subarray((i * rows.length + r) * N, (i * rows.length + r + 1) * N);
      for (let k = 0; k < K; k++) {
        const av = a[i * sA + (p.transA ? k * M + m : m * K + k)];
        if (p.transB) for (let n = 0; n < N; n++) row[n] += av * b[i * sB + n * K + k];
        else for (let n = 0; n < N; n++) row[n] += av * b[i * sB + k * N + n];
      }
      for (let n = 0; n < N; n++) {
        row[n] = alpha * row[n] + (p.bias ? p.bias[n] : 0) + (p.accumulateInto ? p.accumulateInto[(i * M + m) * N + n] : 0);
      }
    });
  }
  return out;
}

/** torch nn.Linear forward: x [rows, in], w [out, in] -> [rows, out]. */
export function linearRef(x: ArrayLike<number>, w: ArrayLike<number>, bias: ArrayLike<number> | null, rows: number, inF: number, outF: number): Float64Array {
  return matmulRef(x, w, { M: rows, N: outF, K: inF, transB: true, bias });
}

/** nn.Linear backward: dx = dy W, dW = dy^T x, db = column sums of dy. */
export function linearBackwardRef(
  x: ArrayLike<number>, w: ArrayLike<number>, dy: ArrayLike<number>, rows: number, inF: number, outF: number,
): { dx: Float64Array; dW: Float64Array; db: Float64Array } {
  const dx = matmulRef(dy, w, { M: rows, N: inF, K: outF });
  const dW = matmulRef(dy, x, { M: outF, N: inF, K: rows, transA: true });
  const db = new Float64Array(outF);
  for (let r = 0; r < rows; r++) for (let o = 0; o < outF; o++) db[o] += dy[r * outF + o];
  return { dx, dW, db };
}
