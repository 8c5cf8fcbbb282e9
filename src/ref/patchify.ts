// Plain TypeScript references for the patch-embedding kernels (float64), by the index formulas.
type Values = ArrayLike<number>;

/** x [B, C, H, W] -> [B, T, C*Ph*Pw], T = (H/Ph)*(W/Pw), features ordered (c, kh, kw). */
export function patchifyRef(x: Values, shape: readonly number[], ph: number, pw: number): Float64Array {
  const out = new Float64Array(x.length);
  forEachPatchElement(shape, ph, pw, (patchIdx, imageIdx) => { out[patchIdx] = x[imageIdx]; });
  return out;
}

/** dx [B, C, H, W] from dout [B, T, C*Ph*Pw]: the inverse scatter. */
export function patchifyBackwardRef(dout: Values, shape: readonly number[], ph: number, pw: number): Float64Array {
  const dx = new Float64Array(dout.length);
  forEachPatchElement(shape, ph, pw, (patchIdx, imageIdx) => { dx[imageIdx] += dout[patchIdx]; });
  return dx;
}

function forEachPatchElement(
  [batch, channels, height, width]: readonly number[], ph: number, pw: number,
  visit: (patchIdx: number, imageIdx: number) => void,
): void {
  const rows = height / ph, cols = width / pw, features = channels * ph * pw;
  for (let b = 0; b < batch; b++) {
    for (let row = 0; row < rows; row++) {
      for (let col = 0; col < cols; col++) {
        const t = row * cols + col;
        for (let c = 0; c < channels; c++) {
          for (let kh = 0; kh < ph; kh++) {
            for (let kw = 0; kw < pw; kw++) {
              const patchIdx = (b * rows * cols + t) * features + (c * ph + kh) * pw + kw;
              const imageIdx = ((b * channels + c) * height + row * ph + kh) * width + col * pw + kw;
              visit(patchIdx, imageIdx);
            }
          }
        }
      }
    }
  }
}

/** h [B, T+1, D] from patches [B, T, D], cls [D], pos [(T+1), D]. */
export function embeddingsRef(
  patches: Values, cls: Values, pos: Values, batch: number, tokens: number, dim: number,
): Float64Array {
  const h = new Float64Array(batch * (tokens + 1) * dim);
  for (let b = 0; b < batch; b++) {
    for (let s = 0; s <= tokens; s++) {
      for (let d = 0; d < dim; d++) {
        const v = s === 0 ? cls[d] : patches[(b * tokens + s - 1) * dim + d];
        h[(b * (tokens + 1) + s) * dim + d] = v + pos[s * dim + d];
      }
    }
  }
  return h;
}

export function embeddingsBackwardRef(
  dh: Values, batch: number, tokens: number, dim: number,
): { dpatches: Float64Array; dcls: Float64Array; dpos: Float64Array } {
  const seqLen = tokens + 1;
  const dpatches = new Float64Array(batch * tokens * dim);
  const dpos = new Float64Array(seqLen * dim);
  for (let b = 0; b < batch; b++) {
    for (let s = 0; s < seqLen; s++) {
      for (let d = 0; d < dim; d++) {
        const g = dh[(b * seqLen + s) * dim + d];
        dpos[s * dim + d] += g;
        if (s > 0) dpatches[(b * tokens + s - 1) * dim + d] = g;
      }
    }
  }
  return { dpatches, dcls: dpos.slice(0, dim), dpos };
}

/** h[:, index, :] of h [B, S, D]. */
export function selectTokenRef(h: Values, batch: number, seqLen: number, dim: number, index: number): Float64Array {
  const out = new Float64Array(batch * dim);
  for (let b = 0; b < batch; b++) {
    for (let d = 0; d < dim; d++) out[b * dim + d] = h[(b * seqLen + index) * dim + d];
  }
  return out;
}

export function selectTokenBackwardRef(
  dout: Values, batch: number, seqLen: number, dim: number, index: number,
): Float64Array {
  const dh = new Float64Array(batch * seqLen * dim);
  for (let b = 0; b < batch; b++) {
    for (let d = 0; d < dim; d++) dh[(b * seqLen + index) * dim + d] = dout[b * dim + d];
  }
  return dh;
}
