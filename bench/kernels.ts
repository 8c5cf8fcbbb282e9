// Kernel profiler (`npm run bench:kernels -- [flags]`): every kernel and variant at the 1024^3 matmul
// and the ViT-Ti/16 and ViT-B/16 shapes (batch 8: 197 x 8 = 1576 token rows), forward and backward.
// llm.c style: each case is first validated against the TypeScript float64 reference (bench/validate.ts,
// as the tests check the kernels), then timed
// (median after warm-up; GPU timestamps where the adapter has them, else submit-and-wait wall clock).
// Big shapes are validated on a subset of output rows (or on one batch element and head for
// attention) of the very run that is timed, which keeps the CPU references affordable.
//
// Flags: --only <substring of "name variant shape">  --variant register|shared  --quick
//        --reps <n>  --no-subgroups (the register variant without the texture kernel, which needs subgroups)
//        --json (last line: { adapter, ceilings, kernels: [...] })
import { Device } from '../src/gpu/device.ts';
import { LONG_SEQUENCE, kernelVariants, setKernelVariants, type AttentionVariant, type KernelVariant } from '../src/ops/variants.ts';
import { Tensor, tidy, keep } from '../src/tensor.ts';
import { noGrad } from '../src/autograd.ts';
import { matmul, linear, matmulKernel } from '../src/ops/matmul.ts';
import { linearGelu, linearResidual, mlpResidual } from '../src/ops/fused.ts';
import { attention } from '../src/ops/attention.ts';
import { layerNorm, layerNormConfig, subgroupRowsFit } from '../src/ops/layernorm.ts';
import { gelu, add } from '../src/ops/elementwise.ts';
import { patchify, embeddings } from '../src/ops/patchify.ts';
import { crossEntropy, softmax } from '../src/ops/loss.ts';
import { AdamW } from '../src/optim/adamw.ts';
import { matmulRef } from '../src/ref/matmul.ts';
import { attentionForwardRef, attentionBackwardRef } from '../src/ref/attention.ts';
import { layerNormRef, layerNormBackwardRef } from '../src/ref/layernorm.ts';
import { geluRef, geluGradRef } from '../src/ref/elementwise.ts';
import { patchifyRef, patchifyBackwardRef, embeddingsRef } from '../src/ref/patchify.ts';
import { crossEntropyRef, crossEntropyBackwardRef, softmaxRef } from '../src/ref/loss.ts';
import { adamwRefInit, adamwRefStep } from '../src/ref/adamw.ts';
import { randn, checkRun, type OpRun, type Tolerance } from './validate.ts';
import { attentionCandidates, autotune } from '../src/ops/autotune.ts';
import { flag, numFlag, timeKernel, measureCeilings, adapterInfo, table, fmt, vitParamCount, type Timing } from './common.ts';

const args = process.argv.slice(2);
const quick = flag(args, 'quick') !== undefined;
const json = flag(args, 'json') !== undefined;
const only = flag(args, 'only');
const forcedVariant = flag(args, 'variant') as KernelVariant | undefined;
if (forcedVariant && forcedVariant !== 'register' && forcedVariant !== 'shared') {
  throw new Error(`--variant must be register or shared, got "${forcedVariant}"`);
}
const fixedReps = flag(args, 'reps') !== undefined ? numFlag(args, 'reps', 5) : undefined;
const noSubgroups = flag(args, 'no-subgroups') !== undefined;
// human-readable lines always print; with --json the JSON object is the last line
const log = (s = '') => console.log(s);

// ---- cases ---------------------------------------------------------------------------------------

/**
 * A case ready to run: `op` runs the kernel(s) once more and reads back the outputs that
 * `reference` computes (named by what they cover, e.g. "C: 8 of 1024 rows"), as bench/validate.ts checks.
 */
interface Prepared extends OpRun {
  /** records the kernel(s) once; outputs are freed at once */
  run(): void;
  /** frees what tidy() cannot (kept tensors) */
  dispose?(): void;
  /** for every output, or by output name */
  tol: Tolerance | Record<string, Tolerance>;
}

interface Case {
  name: string;
  variant: string;
  shape: string;
  /** useful flops per call (GFLOP/s column) */
  flops?: number;
  /** minimal bytes read + written per call (GB/s column) */
  bytes?: number;
  /** the matmul variant to set on the device while the case runs */
  matmulVariant?: KernelVariant;
  /** the attention variant to set on the device while the case runs */
  attentionVariant?: AttentionVariant;
  /** the layernorm threads per row while the case runs */
  layerNormThreads?: number;
  /** false: the 16-thread layernorm kernels even where the subgroup ones would run */
  layerNormSubgroupRows?: boolean;
  prepare(): Prepared;
}

// relative L2 error only: big shapes are compared on sampled rows
const TOL_FWD: Tolerance = { relL2: 1e-5 };
const TOL_BWD: Tolerance = { relL2: 5e-5 };

let seed = 1;
const rand = (shape: number[], scale = 1, requiresGrad = false) =>
  Tensor.fromArray(randn(shape.reduce((a, b) => a * b, 1), seed++, scale), shape, { requiresGrad });

/** `k` row indices spread over [0, n): first, last and evenly in between. */
function sampleRows(n: number, k = 8): number[] {
  if (n <= k) return [...Array(n).keys()];
  return [...new Set(Array.from({ length: k }, (_, i) => Math.round((i * (n - 1)) / (k - 1))))];
}

/** The same rows of a [?, cols] array. */
function pickRows(x: Float32Array, rows: number[], cols: number): Float32Array {
  const out = new Float32Array(rows.length * cols);
  rows.forEach((i, r) => out.set(x.subarray(i * cols, (i + 1) * cols), r * cols));
  return out;
}

const disposeAll = (ts: (Tensor | null)[]) => ts.forEach((t) => t?.dispose());

/** Calls an op's recorded backward directly (as autograd would, without recording). */
function backwardOf(out: Tensor, dOut: Tensor): () => (Tensor | null)[] {
  const fn = out.gradFn;
  if (!fn) throw new Error('output has no gradFn: no input requires grad');
  return () => noGrad(() => fn.backward(dOut));
}

function matmulCase(M: number, N: number, K: number, variant: KernelVariant, dir: 'fwd' | 'bwd'): Case {
  return {
    name: `matmul.${dir}`, variant, shape: `${M}x${N}x${K}`, matmulVariant: variant,
    flops: (dir === 'fwd' ? 2 : 4) * M * N * K,
    prepare() {
      const a = rand([M, K], 1, dir === 'bwd'), b = rand([K, N], 1, dir === 'bwd');
      if (dir === 'fwd') {
        const rows = sampleRows(M);
        const note = `C: ${rows.length} of ${M} rows`;
        return {
          run: () => noGrad(() => matmul(a, b, { variant })).dispose(),
          tol: TOL_FWD,
          op: async () => ({ [note]: pickRows(await noGrad(() => matmul(a, b, { variant })).toArray(), rows, N) }),
          reference: async () => ({ [note]: matmulRef(await a.toArray(), await b.toArray(), { M, N, K, rows }) }),
        };
      }
      const c = matmul(a, b, { variant });
      const dc = rand([M, N]);
      const back = backwardOf(c, dc);
      const rowsA = sampleRows(M), rowsB = sampleRows(K);
      const [noteA, noteB] = [`dA: ${rowsA.length} of ${M} rows`, `dB: ${rowsB.length} of ${K} rows`];
      return {
        run: () => disposeAll(back()),
        tol: TOL_BWD,
        async op() {
          const [da, db] = back();
          return { [noteA]: pickRows(await da!.toArray(), rowsA, K), [noteB]: pickRows(await db!.toArray(), rowsB, N) };
        },
        async reference() {
          const [A, B, DC] = [await a.toArray(), await b.toArray(), await dc.toArray()];
          return {
            [noteA]: matmulRef(DC, B, { M, N: K, K: N, transB: true, rows: rowsA }),
            [noteB]: matmulRef(A, DC, { M: K, N, K: M, transA: true, rows: rowsB }),
          };
        },
      };
    },
  };
}

/** Linear layer y = x W^T + b with x [rows, in], W [out, in]; shape "rows x out x in". */
function linearCase(rows: number, out: number, inF: number, variant: KernelVariant, dir: 'fwd' | 'bwd', what: string): Case {
  const mnk = rows * out * inF;
  return {
    name: `linear.${dir}`, variant, shape: `${rows}x${out}x${inF} ${what}`, matmulVariant: variant,
    flops: (dir === 'fwd' ? 2 : 4) * mnk + rows * out, // + the bias add / bias sum
    prepare() {
      const grad = dir === 'bwd';
      const x = rand([rows, inF], 1, grad), w = rand([out, inF], 0.05, grad), b = rand([out], 0.1, grad);
      const rowsY = sampleRows(rows);
      if (!grad) {
        const note = `y: ${rowsY.length} of ${rows} rows`;
        return {
          run: () => noGrad(() => linear(x, w, b)).dispose(),
          tol: TOL_FWD,
          op: async () => ({ [note]: pickRows(await noGrad(() => linear(x, w, b)).toArray(), rowsY, out) }),
          async reference() {
            const want = matmulRef(await x.toArray(), await w.toArray(), { M: rows, N: out, K: inF, transB: true, rows: rowsY });
            const B = await b.toArray();
            for (let i = 0; i < want.length; i++) want[i] += B[i % out];
            return { [note]: want };
          },
        };
      }
      const y = linear(x, w, b);
      const dy = rand([rows, out]);
      const back = backwardOf(y, dy);
      const rowsW = sampleRows(out);
      const [noteX, noteW] = [`dx: ${rowsY.length} of ${rows} rows`, `dW: ${rowsW.length} of ${out} rows`];
      return {
        run: () => disposeAll(back()),
        tol: TOL_BWD,
        async op() {
          const [dx, dw, db] = back();
          return {
            [noteX]: pickRows(await dx!.toArray(), rowsY, inF),
            [noteW]: pickRows(await dw!.toArray(), rowsW, inF),
            'db: all': await db!.toArray(),
          };
        },
        async reference() {
          const [X, W, DY] = [await x.toArray(), await w.toArray(), await dy.toArray()];
          const dbWant = new Float64Array(out);
          for (let i = 0; i < DY.length; i++) dbWant[i % out] += DY[i];
          return {
            [noteX]: matmulRef(DY, W, { M: rows, N: inF, K: out, rows: rowsY }),
            [noteW]: matmulRef(DY, X, { M: out, N: inF, K: rows, transA: true, rows: rowsW }),
            'db: all': dbWant,
          };
        },
      };
    },
  };
}

/** Batch element 0, head 0 of a [B, S, H*hd] array as [1, S, hd]. */
function head0(x: Float32Array, seq: number, width: number, hd: number): Float32Array {
  const out = new Float32Array(seq * hd);
  for (let s = 0; s < seq; s++) out.set(x.subarray(s * width, s * width + hd), s * hd);
  return out;
}

/**
 * Softmax attention on [B, S, H*hd] inputs: forward, backward, or both per call ('fwd+bwd', which is
 * what a training step pays); `variant` forces an attention variant (default: the one in use).
 */
function attentionCase(
  batch: number, seq: number, heads: number, hd: number, dir: 'fwd' | 'bwd' | 'fwd+bwd', what: string, variant?: AttentionVariant,
): Case {
  const width = heads * hd;
  const bhss = batch * heads * seq * seq;
  return {
    name: `attention.${dir}`, variant: variant ?? '-', shape: `B${batch} S${seq} H${heads} hd${hd} ${what}`, attentionVariant: variant,
    flops: { fwd: 4, bwd: 8, 'fwd+bwd': 12 }[dir] * bhss * hd, // the products only (softmax not counted)
    prepare() {
      const grad = dir !== 'fwd';
      const [q, k, v] = [0, 1, 2].map(() => rand([batch, seq, width], 1, grad));
      const refShape = { batch: 1, seq, heads: 1, headDim: hd, scale: 1 / Math.sqrt(hd) };
      const note = `batch 0, head 0 of ${batch}x${heads}`;
      const slices = async () => Promise.all([q, k, v].map(async (t) => head0(await t.toArray(), seq, width, hd)));
      const names = ['dq', 'dk', 'dv'] as const;
      const contextOut = async (context: Tensor) => ({ [`context: ${note}`]: head0(await context.toArray(), seq, width, hd) });
      const contextRef = async () => {
        const [Q, K, V] = await slices();
        return { [`context: ${note}`]: attentionForwardRef(Q, K, V, refShape).context };
      };
      if (!grad) {
        return {
          run: () => noGrad(() => attention(q, k, v, { heads })).context.dispose(),
          tol: TOL_FWD,
          op: async () => contextOut(noGrad(() => attention(q, k, v, { heads })).context),
          reference: contextRef,
        };
      }
      const dctx = rand([batch, seq, width]);
      const gradsOut = async (grads: (Tensor | null)[]) => Object.fromEntries(await Promise.all(names.map(async (n, i) =>
        [`${n}: ${note}`, head0(await grads[i]!.toArray(), seq, width, hd)] as const)));
      const gradsRef = async () => {
        const [Q, K, V] = await slices();
        const want = attentionBackwardRef(Q, K, V, head0(await dctx.toArray(), seq, width, hd), refShape);
        return Object.fromEntries(names.map((n) => [`${n}: ${note}`, want[n]]));
      };
      if (dir === 'fwd+bwd') {
        const step = () => {
          const { context } = attention(q, k, v, { heads });
          return { context, grads: backwardOf(context, dctx)() };
        };
        return {
          run: () => {
            const { context, grads } = step();
            disposeAll(grads);
            context.dispose();
          },
          tol: TOL_BWD,
          async op() {
            const { context, grads } = step();
            return { ...await contextOut(context), ...await gradsOut(grads) };
          },
          reference: async () => ({ ...await contextRef(), ...await gradsRef() }),
        };
      }
      const { context } = attention(q, k, v, { heads });
      const back = backwardOf(context, dctx);
      return {
        run: () => disposeAll(back()),
        tol: TOL_BWD,
        op: () => gradsOut(back()),
        reference: gradsRef,
      };
    },
  };
}

function layerNormCase(rows: number, d: number, threads: number, dir: 'fwd' | 'bwd', subgroupRows = true): Case {
  const eps = 1e-12;
  const bySubgroup = subgroupRows && subgroupRowsFit(device, threads);
  return {
    name: `layernorm.${dir}`, variant: bySubgroup ? 'subgroup' : `wg${threads}`, shape: `${rows}x${d}`,
    layerNormThreads: threads, layerNormSubgroupRows: subgroupRows,
    bytes: 4 * (dir === 'fwd' ? 2 * rows * d + 2 * rows : 3 * rows * d + 2 * rows + 2 * d),
    prepare() {
      const grad = dir === 'bwd';
      const x = rand([rows, d], 1, grad), w = rand([d], 0.5, grad), b = rand([d], 0.5, grad);
      if (!grad) {
        return {
          run: () => noGrad(() => layerNorm(x, w, b, eps)).dispose(),
          tol: TOL_FWD,
          op: async () => ({ 'y: all': await noGrad(() => layerNorm(x, w, b, eps)).toArray() }),
          reference: async () => ({ 'y: all': layerNormRef(await x.toArray(), await w.toArray(), await b.toArray(), rows, d, eps).y }),
        };
      }
      const y = layerNorm(x, w, b, eps);
      const dy = rand([rows, d]);
      const back = backwardOf(y, dy);
      return {
        run: () => disposeAll(back()),
        tol: TOL_BWD,
        async op() {
          const [dx, dw, db] = back();
          return { 'dx: all': await dx!.toArray(), 'dweight: all': await dw!.toArray(), 'dbias: all': await db!.toArray() };
        },
        async reference() {
          const want = layerNormBackwardRef(await x.toArray(), await w.toArray(), await dy.toArray(), rows, d, eps);
          return { 'dx: all': want.dx, 'dweight: all': want.dweight, 'dbias: all': want.dbias };
        },
      };
    },
  };
}

function geluCase(rows: number, cols: number, dir: 'fwd' | 'bwd'): Case {
  const n = rows * cols;
  const subset = Math.min(n, 1 << 16);
  const note = `first ${subset} of ${n}`;
  return {
    name: `gelu.${dir}`, variant: '-', shape: `${rows}x${cols}`,
    bytes: 4 * (dir === 'fwd' ? 2 : 3) * n,
    prepare() {
      const x = rand([rows, cols], 2, dir === 'bwd');
      if (dir === 'fwd') {
        return {
          run: () => noGrad(() => gelu(x)).dispose(),
          tol: TOL_FWD,
          op: async () => ({ [note]: (await noGrad(() => gelu(x)).toArray()).subarray(0, subset) }),
          reference: async () => ({ [note]: Float64Array.from((await x.toArray()).subarray(0, subset), geluRef) }),
        };
      }
      const y = gelu(x);
      const dy = rand([rows, cols]);
      const back = backwardOf(y, dy);
      return {
        run: () => disposeAll(back()),
        tol: TOL_BWD,
        op: async () => ({ [note]: (await back()[0]!.toArray()).subarray(0, subset) }),
        async reference() {
          const [X, DY] = [await x.toArray(), await dy.toArray()];
          return { [note]: Float64Array.from(X.subarray(0, subset), (v, i) => geluGradRef(v) * DY[i]) };
        },
      };
    },
  };
}

function addCase(rows: number, cols: number): Case {
  return {
    name: 'add.fwd', variant: '-', shape: `${rows}x${cols}`, bytes: 12 * rows * cols,
    prepare() {
      const a = rand([rows, cols]), b = rand([rows, cols]);
      return {
        run: () => add(a, b).dispose(),
        tol: TOL_FWD,
        op: async () => ({ all: await add(a, b).toArray() }),
        async reference() {
          const [A, B] = [await a.toArray(), await b.toArray()];
          return { all: Float64Array.from(A, (v, i) => v + B[i]) };
        },
      };
    },
  };
}

function patchifyCase(batch: number, image: number, patch: number, dir: 'fwd' | 'bwd'): Case {
  const shape = [batch, 3, image, image];
  const n = shape.reduce((a, b) => a * b, 1);
  return {
    name: `patchify.${dir}`, variant: '-', shape: `${batch}x3x${image}x${image} p${patch}`, bytes: 8 * n,
    prepare() {
      const x = rand(shape, 1, dir === 'bwd');
      if (dir === 'fwd') {
        return {
          run: () => noGrad(() => patchify(x, patch)).dispose(),
          tol: TOL_FWD,
          op: async () => ({ all: await noGrad(() => patchify(x, patch)).toArray() }),
          reference: async () => ({ all: patchifyRef(await x.toArray(), shape, patch, patch) }),
        };
      }
      const y = patchify(x, patch);
      const dy = rand([...y.shape]);
      const back = backwardOf(y, dy);
      return {
        run: () => disposeAll(back()),
        tol: TOL_BWD,
        op: async () => ({ all: await back()[0]!.toArray() }),
        reference: async () => ({ all: patchifyBackwardRef(await dy.toArray(), shape, patch, patch) }),
      };
    },
  };
}

function embeddingsCase(batch: number, tokens: number, dim: number): Case {
  return {
    name: 'embeddings.fwd', variant: '-', shape: `B${batch} T${tokens} D${dim}`,
    bytes: 4 * (batch * tokens * dim + (tokens + 2) * dim + batch * (tokens + 1) * dim),
    prepare() {
      const patches = rand([batch, tokens, dim]), cls = rand([1, 1, dim]), pos = rand([1, tokens + 1, dim]);
      return {
        run: () => embeddings(patches, cls, pos).dispose(),
        tol: TOL_FWD,
        op: async () => ({ all: await embeddings(patches, cls, pos).toArray() }),
        reference: async () => ({ all: embeddingsRef(await patches.toArray(), await cls.toArray(), await pos.toArray(), batch, tokens, dim) }),
      };
    },
  };
}

function crossEntropyCase(batch: number, labels: number): Case {
  return {
    name: 'cross_entropy.fwd+bwd', variant: '-', shape: `${batch}x${labels}`, bytes: 4 * 3 * batch * labels,
    prepare() {
      const logits = rand([batch, labels], 2, true);
      const y = Int32Array.from({ length: batch }, (_, i) => (i * 7) % labels);
      const yT = Tensor.fromArray(y, [batch]);
      const one = Tensor.fromArray([1], [1]);
      const step = () => {
        const loss = crossEntropy(logits, yT);
        const [dlogits] = backwardOf(loss, one)();
        return { loss, dlogits: dlogits! };
      };
      return {
        run: () => { const r = step(); r.loss.dispose(); r.dlogits.dispose(); },
        tol: { loss: TOL_FWD, 'dlogits: all': TOL_BWD },
        async op() {
          const { loss, dlogits } = step();
          return { loss: [await loss.item()], 'dlogits: all': await dlogits.toArray() };
        },
        async reference() {
          const L = await logits.toArray();
          return { loss: [crossEntropyRef(L, y, batch, labels)], 'dlogits: all': crossEntropyBackwardRef(L, y, batch, labels) };
        },
      };
    },
  };
}

function softmaxCase(rows: number, cols: number): Case {
  return {
    name: 'softmax.fwd', variant: '-', shape: `${rows}x${cols}`, bytes: 8 * rows * cols,
    prepare() {
      const x = rand([rows, cols], 2);
      return {
        run: () => softmax(x).dispose(),
        tol: TOL_FWD,
        op: async () => ({ all: await softmax(x).toArray() }),
        reference: async () => ({ all: softmaxRef(await x.toArray(), rows, cols) }),
      };
    },
  };
}

function adamwCase(n: number, what: string): Case {
  const subset = Math.min(n, 1 << 16);
  return {
    name: 'adamw.step', variant: '-', shape: `${n} ${what}`, bytes: 28 * n, // reads p, g, m, v; writes p, m, v
    prepare() {
      const p = keep(rand([n], 0.02, true));
      p.grad = keep(rand([n], 0.01));
      const opts = { lr: 1e-3, betas: [0.9, 0.999] as [number, number], eps: 1e-8, weightDecay: 0.01 };
      const opt = new AdamW([p], opts);
      const note = `p: first ${subset} of ${n}`;
      let before: { p0: Float32Array; g: Float32Array } | null = null; // what the step started from
      return {
        run: () => opt.step(),
        tol: TOL_FWD,
        async op() {
          // a fresh optimizer state: one step from the current values, as the reference
          before = { p0: (await p.toArray()).subarray(0, subset), g: (await p.grad!.toArray()).subarray(0, subset) };
          const fresh = new AdamW([p], opts);
          fresh.step();
          const got = (await p.toArray()).subarray(0, subset);
          fresh.dispose();
          return { [note]: got };
        },
        reference() {
          const ref = adamwRefInit(before!.p0);
          adamwRefStep(ref, before!.g, opts);
          return { [note]: ref.p };
        },
        dispose() {
          opt.dispose();
          p.grad?.dispose();
          p.dispose();
        },
      };
    },
  };
}

type Block = 'linear+gelu' | 'linear+residual' | 'linear+residual+layernorm';

/**
 * A transformer block's fused ops against the unfused sequence they replace: linearGelu vs
 * gelu(linear), linearResidual vs add(linear, r), and that followed by layerNorm (ViT's attention output
 * and layernorm_after). 'fwd' without autograd; 'fwd+bwd' records and backpropagates the whole block
 * each run (an unfused block's backward spans several ops). Checked on sampled rows: the output, and dx
 * (with the residual's gradient) of the backward.
 */
function blockCase(block: Block, rows: number, out: number, inF: number, fused: boolean, dir: 'fwd' | 'fwd+bwd', what: string): Case {
  const eps = 1e-12;
  return {
    name: `${block}.${dir}`, variant: fused ? 'fused' : 'unfused', shape: `${rows}x${out}x${inF} ${what}`,
    flops: (dir === 'fwd' ? 2 : 6) * rows * out * inF,
    prepare() {
      const grad = dir === 'fwd+bwd';
      const x = rand([rows, inF], 1, grad), w = rand([out, inF], 0.05, grad), b = rand([out], 0.1, grad);
      const r = rand([rows, out], 1, grad), lnW = rand([out], 0.5, grad), lnB = rand([out], 0.5, grad);
      const leaves = [x, w, b, r, lnW, lnB];
      const forward = () => {
        let y = block === 'linear+gelu'
          ? (fused ? linearGelu(x, w, b) : gelu(linear(x, w, b)))
          : (fused ? linearResidual(x, w, b, r) : add(linear(x, w, b), r));
        if (block === 'linear+residual+layernorm') y = layerNorm(y, lnW, lnB, eps);
        return y;
      };
      const dy = rand([rows, out]);
      const step = () => {
        const y = forward();
        if (grad) y.backward(dy);
        return y;
      };
      const clearGrads = () => leaves.forEach((t) => { t.grad?.dispose(); t.grad = null; });
      const sample = sampleRows(rows);
      return {
        run: () => tidy(() => { step(); clearGrads(); }),
        tol: { y: TOL_FWD, dx: TOL_BWD, dresidual: TOL_BWD },
        async op() {
          const outputs: Record<string, Float32Array> = { y: pickRows(await step().toArray(), sample, out) };
          if (grad) {
            outputs.dx = pickRows(await x.grad!.toArray(), sample, inF);
            if (block !== 'linear+gelu') outputs.dresidual = pickRows(await r.grad!.toArray(), sample, out);
          }
          clearGrads();
          return outputs;
        },
        async reference() {
          const [X, W, B, R, LW, LB, DY] = await Promise.all([x, w, b, r, lnW, lnB, dy].map((t) => t.toArray()));
          const z = matmulRef(X, W, { M: rows, N: out, K: inF, transB: true, rows: sample });
          sample.forEach((m, i) => { for (let n = 0; n < out; n++) z[i * out + n] += B[n] + (block === 'linear+gelu' ? 0 : R[m * out + n]); });
          const dyRows = pickRows(DY, sample, out);
          let want: Float64Array = z, dz: Float64Array;
          if (block === 'linear+gelu') {
            want = z.map(geluRef);
            dz = z.map((v, i) => geluGradRef(v) * dyRows[i]);
          } else if (block === 'linear+residual+layernorm') {
            want = layerNormRef(z, LW, LB, sample.length, out, eps).y;
            dz = layerNormBackwardRef(z, LW, dyRows, sample.length, out, eps).dx;
          } else {
            dz = Float64Array.from(dyRows);
          }
          const wanted: Record<string, Float64Array> = { y: want };
          if (grad) {
            wanted.dx = matmulRef(dz, W, { M: sample.length, N: inF, K: out });
            if (block !== 'linear+gelu') wanted.dresidual = dz;
          }
          return wanted;
        },
      };
    },
  };
}

/**
 * A transformer MLP with its residual: mlpResidual against linearGelu + linearResidual (the same
 * forward; its backward applies the GELU's derivative in a product's epilogue, not in a pass of its own)
 * and against the four unfused ops. Checked on sampled rows: y, and dx of the backward.
 */
function mlpCase(rows: number, hidden: number, mid: number, how: 'mlpResidual' | 'two fused' | 'unfused', dir: 'fwd' | 'fwd+bwd', what: string): Case {
  return {
    name: `mlp+residual.${dir}`, variant: how, shape: `${rows}x${hidden}x${mid} ${what}`,
    flops: (dir === 'fwd' ? 4 : 12) * rows * hidden * mid,
    prepare() {
      const grad = dir === 'fwd+bwd';
      const x = rand([rows, hidden], 1, grad), w1 = rand([mid, hidden], 0.05, grad), b1 = rand([mid], 0.1, grad);
      const w2 = rand([hidden, mid], 0.05, grad), b2 = rand([hidden], 0.1, grad), r = rand([rows, hidden], 1, grad);
      const leaves = [x, w1, b1, w2, b2, r];
      const dy = rand([rows, hidden]);
      const step = () => {
        const y = how === 'mlpResidual' ? mlpResidual(x, w1, b1, w2, b2, r)
          : how === 'two fused' ? linearResidual(linearGelu(x, w1, b1), w2, b2, r)
            : add(linear(gelu(linear(x, w1, b1)), w2, b2), r);
        if (grad) y.backward(dy);
        return y;
      };
      const clearGrads = () => leaves.forEach((t) => { t.grad?.dispose(); t.grad = null; });
      const sample = sampleRows(rows), n = sample.length;
      return {
        run: () => tidy(() => { step(); clearGrads(); }),
        tol: { y: TOL_FWD, dx: TOL_BWD },
        async op() {
          const outputs: Record<string, Float32Array> = { y: pickRows(await step().toArray(), sample, hidden) };
          if (grad) outputs.dx = pickRows(await x.grad!.toArray(), sample, hidden);
          clearGrads();
          return outputs;
        },
        async reference() {
          const [X, W1, B1, W2, B2, R, DY] = await Promise.all([x, w1, b1, w2, b2, r, dy].map((t) => t.toArray()));
          const z = matmulRef(X, W1, { M: rows, N: mid, K: hidden, transB: true, rows: sample }).map((v, i) => v + B1[i % mid]);
          const want = matmulRef(z.map(geluRef), W2, { M: n, N: hidden, K: mid, transB: true });
          sample.forEach((m, i) => { for (let c = 0; c < hidden; c++) want[i * hidden + c] += B2[c] + R[m * hidden + c]; });
          const wanted: Record<string, Float64Array> = { y: want };
          if (grad) {
            const dz = matmulRef(pickRows(DY, sample, hidden), W2, { M: n, N: mid, K: hidden }).map((v, i) => v * geluGradRef(z[i]));
            wanted.dx = matmulRef(dz, W1, { M: n, N: hidden, K: mid });
          }
          return wanted;
        },
      };
    },
  };
}

// ---- the case list ---------------------------------------------------------------------------

const ROWS = 197 * 8; // ViT at 224 / patch 16, batch 8: 196 patches + [CLS]
const PATCH_ROWS = 196 * 8;
const variants: KernelVariant[] = forcedVariant ? [forcedVariant] : ['register', 'shared'];
const lnThreads = [16, 64];

function cases(): Case[] {
  const out: Case[] = [];
  const models = quick
    ? [{ tag: 'Ti', hidden: 192, mlp: 768, heads: 3 }]
    : [{ tag: 'Ti', hidden: 192, mlp: 768, heads: 3 }, { tag: 'B', hidden: 768, mlp: 3072, heads: 12 }];
  for (const v of variants) {
    out.push(matmulCase(1024, 1024, 1024, v, 'fwd'));
    if (!quick) out.push(matmulCase(1024, 1024, 1024, v, 'bwd'));
  }
  for (const m of models) {
    for (const dir of ['fwd', 'bwd'] as const) {
      for (const v of variants) {
        out.push(linearCase(ROWS, m.hidden, m.hidden, v, dir, `ViT-${m.tag} q/k/v/out`));
        out.push(linearCase(ROWS, m.mlp, m.hidden, v, dir, `ViT-${m.tag} MLP up`));
        out.push(linearCase(ROWS, m.hidden, m.mlp, v, dir, `ViT-${m.tag} MLP down`));
        if (!quick) out.push(linearCase(PATCH_ROWS, m.hidden, 768, v, dir, `ViT-${m.tag} patch embed`));
      }
      out.push(attentionCase(8, 197, m.heads, 64, dir, `ViT-${m.tag}`));
      for (const t of quick ? [lnThreads[0]] : lnThreads) out.push(layerNormCase(ROWS, m.hidden, t, dir));
      // the 16-thread kernels where lavapipe's subgroup ones (same bits) run by default
      if (!quick && lnThreads.includes(16)) out.push(layerNormCase(ROWS, m.hidden, 16, dir, false));
      out.push(geluCase(ROWS, m.mlp, dir));
    }
    out.push(addCase(ROWS, m.hidden));
    for (const dir of ['fwd', 'fwd+bwd'] as const) {
      for (const fused of [true, false]) {
        out.push(blockCase('linear+gelu', ROWS, m.mlp, m.hidden, fused, dir, `ViT-${m.tag} MLP up`));
        out.push(blockCase('linear+residual', ROWS, m.hidden, m.mlp, fused, dir, `ViT-${m.tag} MLP down`));
        out.push(blockCase('linear+residual+layernorm', ROWS, m.hidden, m.hidden, fused, dir, `ViT-${m.tag} attn out + LN`));
      }
      for (const how of ['mlpResidual', 'two fused', 'unfused'] as const) out.push(mlpCase(ROWS, m.hidden, m.mlp, how, dir, `ViT-${m.tag} MLP`));
    }
    if (!quick) out.push(embeddingsCase(8, 196, m.hidden));
  }
  // a training step's attention, fused against unfused, at ViT-B/16's 197 tokens (224 px) and 577 (384 px)
  for (const v of attentionCandidates(device)) {
    out.push(attentionCase(1, 197, 12, 64, 'fwd+bwd', 'ViT-B/16', v));
    if (!quick) out.push(attentionCase(1, 577, 12, 64, 'fwd+bwd', 'ViT-B/16@384', v));
  }
  out.push(patchifyCase(8, 224, 16, 'fwd'), patchifyCase(8, 224, 16, 'bwd'));
  out.push(crossEntropyCase(8, 2));
  if (!quick) out.push(crossEntropyCase(8, 1000), softmaxCase(8, 1000));
  const tiParams = vitParamCount({ image: 224, patch: 16, hidden: 192, layers: 12, mlp: 768, labels: 2 });
  out.push(adamwCase(tiParams, 'ViT-Ti params'));
  return out.filter((c) => !only || `${c.name} ${c.variant} ${c.shape}`.includes(only));
}

// ---- run -------------------------------------------------------------------------------------------

interface Row {
  name: string; variant: string; shape: string;
  ms: number | null; gflops: number | null; gbps: number | null;
  pct_fma: number | null; pct_copy: number | null;
  check: string; max_rel_l2: number | null; timing: Timing['source'] | null; reps: number;
  /** CPU cores this process kept busy while timing (see Timing.cores) */
  cores_busy: number | null;
  entries: { name: string; ms: number }[];
}

const device = await Device.create({
  disableFeatures: noSubgroups ? ['subgroups'] : undefined,
});
if (forcedVariant) setKernelVariants(device, { matmul: forcedVariant });
const tuned = forcedVariant ? null : await autotune(device);
log(`adapter: ${device.description}`);
log(`timing: ${device.canTime ? 'GPU timestamp queries' : 'submit-and-wait wall clock'}; matmul variant in use: ${kernelVariants(device).matmul}` +
  (tuned ? ` (autotune ${tuned.source}: ${Object.entries(tuned.ms).map(([k, v]) => `${k} ${fmt(v as number, 1)} ms`).join(', ')})` : '') +
  `; attention variant in use: ${kernelVariants(device).attention} (past ${LONG_SEQUENCE} tokens: ${kernelVariants(device).attentionLong})` +
  (tuned?.attention ? ` (autotune ${tuned.attention.source}: ${[tuned.attention.ms, tuned.attention.msLong].map((ms) => Object.entries(ms).map(([k, v]) => `${k} ${fmt(v as number, 1)} ms`).join(', ')).join(' | ')})` : ''));
const ceilings = await measureCeilings(device);
log(`ceilings: FMA probe ${fmt(ceilings.gflops)} GFLOP/s, copy ${fmt(ceilings.gbps, 2)} GB/s (${ceilings.source})\n`);

const rows: Row[] = [];
let failures = 0;
const cpu0 = process.cpuUsage();
const wall0 = performance.now();
const defaultVariant = kernelVariants(device).matmul;
const defaultThreads = layerNormConfig.threadsPerRow;
const { attention: defaultAttention, attentionLong: defaultAttentionLong } = kernelVariants(device);
for (const c of cases()) {
  setKernelVariants(device, {
    matmul: c.matmulVariant ?? defaultVariant, attention: c.attentionVariant ?? defaultAttention, attentionLong: c.attentionVariant ?? defaultAttentionLong,
  });
  layerNormConfig.threadsPerRow = c.layerNormThreads ?? defaultThreads;
  layerNormConfig.subgroupRows = c.layerNormSubgroupRows ?? true;
  const kernelName = c.matmulVariant ? matmulKernel(c.matmulVariant, device).entry.replace(/^matmul_/, '') : null;
  const row: Row = {
    name: c.name, variant: kernelName ?? c.variant, shape: c.shape, ms: null, gflops: null, gbps: null, pct_fma: null, pct_copy: null,
    check: '', max_rel_l2: null, timing: null, reps: 0, entries: [], cores_busy: null,
  };
  try {
    await tidy(async () => {
      const p = c.prepare();
      try {
        const checks = await checkRun(p, p.tol);
        const worst = checks.reduce((a, b) => (b.diff.relL2 / b.tol.relL2 > a.diff.relL2 / a.tol.relL2 ? b : a));
        row.max_rel_l2 = worst.diff.relL2;
        const bad = checks.filter((k) => !k.ok);
        row.check = bad.length
          ? `FAIL ${bad.map((k) => k.message).join('; ')}`
          : `ok ${worst.diff.relL2.toExponential(0)} (${checks.map((k) => k.name).join('; ')})`;
        if (bad.length) return;
        const t = await timeKernel(device, p.run, { warmup: 1, reps: fixedReps, targetMs: quick ? 300 : 1000, minReps: 3 });
        row.ms = t.ms;
        row.timing = t.source;
        row.reps = t.reps;
        row.cores_busy = t.cores;
        row.entries = t.entries.map((e) => ({ name: e.name, ms: e.ms }));
        if (c.flops) row.gflops = c.flops / t.ms / 1e6;
        if (c.bytes) row.gbps = c.bytes / t.ms / 1e6;
        if (row.gflops != null) row.pct_fma = (100 * row.gflops) / ceilings.gflops;
        if (row.gbps != null) row.pct_copy = (100 * row.gbps) / ceilings.gbps;
      } finally {
        p.dispose?.();
      }
    });
  } catch (e) {
    row.check = `ERROR ${(e as Error).message.split('\n')[0]}`;
  }
  if (row.check.startsWith('FAIL') || row.check.startsWith('ERROR')) failures++;
  rows.push(row);
  log(`${c.name.padEnd(22)} ${row.variant.padEnd(17)} ${c.shape.padEnd(34)} ${row.ms == null ? '        -' : `${fmt(row.ms, 3).padStart(9)} ms`}` +
    `${row.gflops != null ? `  ${fmt(row.gflops).padStart(6)} GFLOP/s (${fmt(row.pct_fma, 0)}% FMA)` : ''}` +
    `${row.gbps != null ? `  ${fmt(row.gbps, 2).padStart(6)} GB/s (${fmt(row.pct_copy, 0)}% copy)` : ''}  ${row.check.split(' (')[0]}`);
}
setKernelVariants(device, { matmul: defaultVariant, attention: defaultAttention, attentionLong: defaultAttentionLong });
layerNormConfig.threadsPerRow = defaultThreads;
layerNormConfig.subgroupRows = true;
const cpuUsed = process.cpuUsage(cpu0);
const coresBusy = (cpuUsed.user + cpuUsed.system) / 1000 / (performance.now() - wall0);

log('\n' + table(
  ['kernel', 'variant', 'shape', 'ms', 'GFLOP/s', '% FMA', 'GB/s', '% copy', 'cores', 'check'],
  rows.map((r) => [r.name, r.variant, r.shape, fmt(r.ms, 3), fmt(r.gflops), fmt(r.pct_fma, 0), fmt(r.gbps, 2), fmt(r.pct_copy, 0), fmt(r.cores_busy, 2), r.check.split(' (')[0]]),
  3,
));
log('\nshape: matmul M x N x K; linear rows x out x in (forward y = x W^T + b; backward dx, dW and the bias sum)');
log('check: relative L2 error against the float64 TypeScript reference (limits 1e-5 forward, 5e-5 backward)');
log('cores: CPU time / wall time of this process while timing (on lavapipe: the CPU share the kernel actually got)');
const cpus = (await import('node:os')).availableParallelism();
log(`CPU: this process kept ${fmt(coresBusy, 2)} of ${cpus} cores busy (references and kernels)` +
  (device.isCPU && coresBusy < 0.7 * cpus ? '; the machine is shared, so timings are pessimistic' : ''));
if (failures) log(`\n${failures} case(s) failed validation or errored`);

if (json) {
  console.log(JSON.stringify({
    adapter: adapterInfo(device),
    autotune: tuned ? { variant: tuned.matmulVariant, source: tuned.source, ms: tuned.ms } : null,
    ceilings,
    quick,
    cpu_cores_busy: coresBusy,
    kernels: rows,
  }));
}
device.destroy();
process.exitCode = failures ? 1 : 0;
