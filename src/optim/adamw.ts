// AdamW with torch.optim.AdamW semantics (decoupled weight decay, bias-corrected moments):
// one in-place kernel per parameter per step (shaders/adamw.wgsl).
import { Tensor, keep } from '../tensor.ts';
import { wgsl } from '../gpu/wgsl.generated.ts';
import { fill } from '../ops/elementwise.ts';

export interface AdamWOptions {
  /** learning rate, default 1e-3 */
  lr?: number;
  /** moment decay rates, default [0.9, 0.999] */
  betas?: [number, number];
  /** added to the denominator, default 1e-8 */
  eps?: number;
  /** decoupled weight decay, default 0.01 */
  weightDecay?: number;
}

/** A checkpoint of the optimizer: hyper-parameters and the moments of every parameter, in order. */
export interface AdamWState {
  /** number of step() calls */
  step: number;
  lr: number;
  betas: [number, number];
  eps: number;
  weightDecay: number;
  /** first moments, one per parameter (empty where the parameter has no state yet) */
  m: Float32Array[];
  /** second moments, one per parameter (empty where the parameter has no state yet) */
  v: Float32Array[];
  /**
   * Steps taken by each parameter (torch keeps a step count per parameter, which lags the
   * optimizer's when a parameter had no gradient). Defaults to `step` for parameters with moments.
   */
  paramSteps?: number[];
}

interface ParamState { m: Tensor; v: Tensor; step: number }

const WG = 256;

function checkLr(lr: number): void {
  if (!(lr >= 0) || !Number.isFinite(lr)) throw new Error(`AdamW: lr must be a finite number >= 0, got ${lr}`);
}

function checkOptions(betas: readonly number[], eps: number, weightDecay: number): void {
  if (betas.length !== 2) throw new Error(`AdamW: betas must be [beta1, beta2], got [${betas}]`);
  betas.forEach((b, i) => {
    if (!(b >= 0 && b < 1)) throw new Error(`AdamW: betas[${i}] must be in [0, 1), got ${b}`);
  });
  if (!(eps >= 0) || !Number.isFinite(eps)) throw new Error(`AdamW: eps must be a finite number >= 0, got ${eps}`);
  if (!(weightDecay >= 0) || !Number.isFinite(weightDecay)) {
    throw new Error(`AdamW: weightDecay must be a finite number >= 0, got ${weightDecay}`);
  }
}

export class AdamW {
  readonly params: readonly Tensor[];
  betas: [number, number];
  eps: number;
  weightDecay: number;
  private lrValue: number;
  private steps = 0;
  /** per parameter; created at its first step with a gradient (torch's lazy state) */
  private readonly state: (ParamState | null)[];

  constructor(params: Iterable<Tensor>, opts: AdamWOptions = {}) {
    this.params = [...params];
    this.params.forEach((p, i) => {
      if (p.dtype !== 'f32') throw new Error(`AdamW: parameter ${i}${p.name ? ` "${p.name}"` : ''} is ${p.dtype}, not float32`);
    });
    if (new Set(this.params).size !== this.params.length) throw new Error('AdamW: a parameter appears more than once');
    const lr = opts.lr ?? 1e-3;
    const betas: [number, number] = [...(opts.betas ?? [0.9, 0.999])] as [number, number];
    const eps = opts.eps ?? 1e-8;
    const weightDecay = opts.weightDecay ?? 0.01;
    checkLr(lr);
    checkOptions(betas, eps, weightDecay);
    this.lrValue = lr;
    this.betas = betas;
    this.eps = eps;
    this.weightDecay = weightDecay;
    this.state = this.params.map(() => null);
  }

  /** The learning rate; set it between steps for schedules. */
  get lr(): number {
    return this.lrValue;
  }

  set lr(value: number) {
    checkLr(value);
    this.lrValue = value;
  }

  /** Number of step() calls so far (restored by loadStateDict). */
  get stepCount(): number {
    return this.steps;
  }

  /** Updates every parameter that has a gradient, in place; parameters without one are skipped. */
  step(): void {
    checkLr(this.lrValue);
    checkOptions(this.betas, this.eps, this.weightDecay);
    this.steps++;
    const [beta1, beta2] = this.betas;
    const lr = this.lrValue;
    this.params.forEach((p, i) => {
      const g = p.grad;
      if (!g) return;
      if (g.size !== p.size) throw new Error(`AdamW: gradient [${g.shape}] does not match parameter ${i} [${p.shape}]`);
      const st = (this.state[i] ??= { m: this.zeros(p), v: this.zeros(p), step: 0 });
      st.step++;
      if (p.size === 0) return;
      // float64 on the CPU, like torch's Python scalars
      const bc1 = 1 - beta1 ** st.step;
      const bc2 = 1 - beta2 ** st.step;
      p.device.dispatch({
        shader: wgsl.adamw, entry: 'adamw_step', constants: { WG },
        uniforms: {
          n: p.size, decay: 1 - lr * this.weightDecay, beta1, one_minus_beta1: 1 - beta1, beta2,
          one_minus_beta2: 1 - beta2, step_size: lr / bc1, sqrt_bc2: Math.sqrt(bc2), eps: this.eps,
        },
        bindings: [p.binding, g.binding, st.m.binding, st.v.binding],
        workgroups: p.device.grid(p.size, WG),
      });
    });
  }

  /** Frees every gradient and sets it to null (torch's zero_grad(set_to_none=True)). */
  zeroGrad(): void {
    for (const p of this.params) {
      p.grad?.dispose();
      p.grad = null;
    }
  }

  /** Hyper-parameters and moments, read back from the GPU, for a checkpoint. */
  async stateDict(): Promise<AdamWState> {
    const m: Float32Array[] = [];
    const v: Float32Array[] = [];
    for (const st of this.state) {
      m.push(st ? await st.m.toArray() : new Float32Array(0));
      v.push(st ? await st.v.toArray() : new Float32Array(0));
    }
    return {
      step: this.steps, lr: this.lrValue, betas: [...this.betas], eps: this.eps, weightDecay: this.weightDecay,
      m, v, paramSteps: this.state.map((st) => st?.step ?? 0),
    };
  }

  /** Restores a stateDict() (for the same parameters, in the same order). */
  loadStateDict(state: AdamWState): void {
    const n = this.params.length;
    if (state.m.length !== n || state.v.length !== n) {
      throw new Error(`AdamW.loadStateDict: state has moments for ${state.m.length} parameters, the optimizer has ${n}`);
    }
    if (state.paramSteps && state.paramSteps.length !== n) {
      throw new Error(`AdamW.loadStateDict: paramSteps has ${state.paramSteps.length} entries for ${n} parameters`);
    }
    if (!Number.isInteger(state.step) || state.step < 0) throw new Error(`AdamW.loadStateDict: step must be an integer >= 0, got ${state.step}`);
    checkLr(state.lr);
    checkOptions(state.betas, state.eps, state.weightDecay);
    this.params.forEach((p, i) => {
      const [m, v] = [state.m[i], state.v[i]];
      if (m.length !== v.length || (m.length !== 0 && m.length !== p.size)) {
        throw new Error(
          `AdamW.loadStateDict: parameter ${i}${p.name ? ` "${p.name}"` : ''} has ${p.size} elements, its moments ${m.length} and ${v.length}`,
        );
      }
    });
    this.steps = state.step;
    this.lrValue = state.lr;
    this.betas = [...state.betas];
    this.eps = state.eps;
    this.weightDecay = state.weightDecay;
    this.params.forEach((p, i) => {
      this.disposeState(i);
      if (state.m[i].length === 0) return;
      this.state[i] = {
        m: keep(Tensor.fromArray(state.m[i], p.shape, { device: p.device })),
        v: keep(Tensor.fromArray(state.v[i], p.shape, { device: p.device })),
        step: state.paramSteps?.[i] ?? state.step,
      };
    });
  }

  /** Frees the moments (the optimizer starts afresh if stepped again). */
  dispose(): void {
    this.params.forEach((_, i) => this.disposeState(i));
  }

  private disposeState(i: number): void {
    const st = this.state[i];
    st?.m.dispose();
    st?.v.dispose();
    this.state[i] = null;
  }

  private zeros(p: Tensor): Tensor {
    const t = keep(Tensor.empty(p.shape, { device: p.device }));
    fill(t, 0);
    return t;
  }
}
