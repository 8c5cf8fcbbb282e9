// Plain float64 reference for softmax attention (Hugging Face ViTSelfAttention), forward and backward.
// q, k, v and the context are [B, S, H*hd]; head h uses features h*hd .. (h+1)*hd-1.

export interface AttentionRefShape {
  batch: number;
  seq: number;
  heads: number;
  headDim: number;
  /** default 1 / sqrt(headDim) */
  scale?: number;
  /** one factor per head, applied to the probabilities after dropout */
  headMask?: readonly number[] | null;
  dropout?: number;
  seed?: number;
}

function hashU32(v: number): number {
  let h = v >>> 0;
  h ^= h >>> 16; h = Math.imul(h, 0x7feb352d) >>> 0;
  h ^= h >>> 15; h = Math.imul(h, 0x846ca68b) >>> 0;
  h ^= h >>> 16;
  return h >>> 0;
}

/** Whether dropout keeps the probability at this flat [B, H, S, S] index: the shaders' hash, bit for bit. */
export function dropoutKeeps(seed: number, index: number, prob: number): boolean {
  const r = hashU32((index ^ hashU32(seed >>> 0)) >>> 0);
  return (r >>> 8) / 16777216 >= Math.fround(prob);
}

/** The factor p' / p at every [B, H, S, S] entry: inverted dropout times the head mask. */
function maskFactors(o: AttentionRefShape): Float64Array | null {
  const { batch: B, seq: S, heads: H } = o;
  const drop = o.dropout ?? 0;
  if (drop <= 0 && !o.headMask) return null;
  const f = new Float64Array(B * H * S * S);
  for (let i = 0; i < f.length; i++) {
    const head = Math.floor(i / (S * S)) % H;
    const kept = drop > 0 ? (dropoutKeeps(o.seed ?? 0, i, drop) ? 1 / (1 - drop) : 0) : 1;
    f[i] = kept * (o.headMask ? o.headMask[head] : 1);
  }
  return f;
}

export interface AttentionRefForward {
  context: Float64Array;
  /** p' (after dropout and head mask), [B, H, S, S] */
  probs: Float64Array;
  /** p (the plain softmax), [B, H, S, S] */
  softmax: Float64Array;
}

export function attentionForwardRef(
  q: ArrayLike<number>, k: ArrayLike<number>, v: ArrayLike<number>, o: AttentionRefShape,
): AttentionRefForward {
  const { batch: B, seq: S, heads: H, headDim: D } = o;
  const E = H * D;
  const scale = o.scale ?? 1 / Math.sqrt(D);
  const softmax = new Float64Array(B * H * S * S);
  const context = new Float64Array(B * S * E);
  const row = new Float64Array(S);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      for (let i = 0; i < S; i++) {
        let max = -Infinity;
        for (let j = 0; j < S; j++) {
          let s = 0;
          for (let d = 0; d < D; d++) s += q[(b * S + i) * E + h * D + d] * k[(b * S + j) * E + h * D + d];
          row[j] = s * scale;
          max = Math.max(max, row[j]);
        }
        let total = 0;
        for (let j = 0; j < S; j++) total += (row[j] = Math.exp(row[j] - max));
        const base = ((b * H + h) * S + i) * S;
        for (let j = 0; j < S; j++) softmax[base + j] = row[j] / total;
      }
    }
  }
  const factors = maskFactors(o);
  const probs = factors ? softmax.map((p, i) => p * factors[i]) : softmax.slice();
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      for (let i = 0; i < S; i++) {
        const base = ((b * H + h) * S + i) * S;
        for (let j = 0; j < S; j++) {
          const p = probs[base + j];
          for (let d = 0; d < D; d++) context[(b * S + i) * E + h * D + d] += p * v[(b * S + j) * E + h * D + d];
        }
      }
    }
  }
  return { context, probs, softmax };
}

export interface AttentionRefGrads { dq: Float64Array; dk: Float64Array; dv: Float64Array }

/** Gradients of sum(context * dContext) with respect to q, k and v. */
export function attentionBackwardRef(
  q: ArrayLike<number>, k: ArrayLike<number>, v: ArrayLike<number>, dContext: ArrayLike<number>, o: AttentionRefShape,
): AttentionRefGrads {
  const { batch: B, seq: S, heads: H, headDim: D } = o;
  const E = H * D;
  const scale = o.scale ?? 1 / Math.sqrt(D);
  const { softmax, probs } = attentionForwardRef(q, k, v, o);
  const factors = maskFactors(o);
  const dq = new Float64Array(B * S * E);
  const dk = new Float64Array(B * S * E);
  const dv = new Float64Array(B * S * E);
  const dS = new Float64Array(S);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      for (let i = 0; i < S; i++) {
        const base = ((b * H + h) * S + i) * S;
        const dC = (d: number) => dContext[(b * S + i) * E + h * D + d];
        let dot = 0;
        for (let j = 0; j < S; j++) {
          // dP' = dC V^T; dP = dP' * mask (gradient with respect to the pre-dropout softmax)
          let g = 0;
          for (let d = 0; d < D; d++) g += dC(d) * v[(b * S + j) * E + h * D + d];
          dS[j] = g * (factors ? factors[base + j] : 1);
          dot += softmax[base + j] * dS[j];
          for (let d = 0; d < D; d++) dv[(b * S + j) * E + h * D + d] += probs[base + j] * dC(d);
        }
        for (let j = 0; j < S; j++) {
          const s = scale * softmax[base + j] * (dS[j] - dot);
          for (let d = 0; d < D; d++) {
            dq[(b * S + i) * E + h * D + d] += s * k[(b * S + j) * E + h * D + d];
            dk[(b * S + j) * E + h * D + d] += s * q[(b * S + i) * E + h * D + d];
          }
        }
      }
    }
  }
  return { dq, dk, dv };
}
