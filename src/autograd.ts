// A minimal tape: each op that sees an input requiring grad attaches a GradFn to its output.
// backward() walks the graph once in reverse topological order (no recursion per path), sums the
// gradients that meet at a tensor, hands leaves their .grad and frees what the ops saved. An op may
// take over one of those sums: it declares the inputs whose pending gradient it adds in its own kernel
// (GradFn.accumulates), which saves the tape's add pass over that gradient.
// It imports Tensor as a type only: tensor.ts imports backward() from here, so the graph stays acyclic.
import type { Tensor } from './tensor.ts';
import { wgsl } from './gpu/wgsl.generated.ts';
import { shaderConstant } from './gpu/shaders.ts';

export interface GradFn {
  name: string;
  inputs: readonly (Tensor | null)[];
  /**
   * One gradient per input (null where the input needs none). Must not dispose `gradOutput`.
   * `pending[i]` (inputs listed in `accumulates` only, else null; absent: none) is the gradient the
   * tape already holds for input i: the returned gradient for that input must then include it, as
   * pending + own (that order, as the tape's own add), in a new tensor; `pending` itself must not be
   * written or disposed.
   */
  backward(gradOutput: Tensor, pending?: readonly (Tensor | null)[]): (Tensor | null)[];
  /** Indices of the inputs whose pending gradient backward adds into its own (see backward). */
  accumulates?: readonly number[];
  /** Tensors the op created and saved only for backward; disposed after backward or with the output. */
  saved?: Tensor[];
}

let gradEnabled = true;

/** accumulate: hand GradFn.accumulates their pending gradients (tests switch it off to compare with separate adds). */
export const autogradConfig = { accumulate: true };

export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** Runs `fn` without recording anything for backward (also for async functions). */
export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  let result: T;
  try {
    result = fn();
  } catch (e) {
    gradEnabled = prev;
    throw e;
  }
  if (result instanceof Promise) {
    return result.finally(() => {
      gradEnabled = prev;
    }) as T;
  }
  gradEnabled = prev;
  return result;
}

/** Runs `fn` with recording switched on or off (checkpointing re-enables it inside backward). */
export function withGrad<T>(enabled: boolean, fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = enabled;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

/** True when an op applied to these inputs must record its backward. */
export function needsGrad(...inputs: (Tensor | null | undefined)[]): boolean {
  return gradEnabled && inputs.some((t) => t?.requiresGrad);
}

/**
 * Attaches a backward to `output` when any input requires grad; otherwise disposes `saved`.
 * `accumulates`: see GradFn. Returns `output`.
 */
export function record(
  output: Tensor,
  name: string,
  inputs: readonly (Tensor | null)[],
  backward: GradFn['backward'],
  saved: Tensor[] = [],
  accumulates: readonly number[] = [],
): Tensor {
  if (!needsGrad(...inputs)) {
    for (const t of saved) t.dispose();
    return output;
  }
  output.requiresGrad = true;
  output.gradFn = { name, inputs, backward, saved, accumulates };
  return output;
}

/** Tensors whose recorded backward ran and was freed: backpropagating through them again is an error. */
const backpropagated = new WeakSet<Tensor>();

function releaseGradFn(t: Tensor): void {
  const fn = t.gradFn;
  t.gradFn = null;
  backpropagated.add(t);
  if (fn?.saved) for (const s of fn.saved) s.dispose();
}

// The tape's own arithmetic (the seed of ones, sums where gradients meet, leaves' accumulation):
// three entry points of shaders/elementwise.wgsl, dispatched here so the tape needs no op module.
function elementwise(entry: 'add' | 'accumulate' | 'fill', tensors: Tensor[], alpha: number): void {
  const n = tensors[0].size;
  if (n === 0) return;
  const device = tensors[0].device;
  device.dispatch({
    shader: wgsl.elementwise, entry, uniforms: { n, alpha },
    bindings: tensors.map((t) => t.binding), workgroups: device.grid(n, shaderConstant(wgsl.elementwise, 'WG')),
  });
}

function onesLike(t: Tensor): Tensor {
  const out = t.emptyLike();
  elementwise('fill', [out], 1);
  return out;
}

function addTensors(a: Tensor, b: Tensor): Tensor {
  const out = a.emptyLike();
  elementwise('add', [a, b, out], 0);
  return out;
}

function accumulateInto(target: Tensor, g: Tensor): void {
  elementwise('accumulate', [target, g], 1);
}

/**
 * The gradients `fn` may add into its own (GradFn.accumulates): what the tape holds so far for those
 * inputs, the sum over their consumers that ran before fn (consumers that run later add theirs in
 * the tape, as before). An input that appears twice among fn's inputs gets none.
 */
function pendingFor(fn: GradFn, grads: Map<Tensor, Tensor>): (Tensor | null)[] {
  return fn.inputs.map((input, i) => {
    if (!autogradConfig.accumulate || !input || !fn.accumulates?.includes(i)) return null;
    if (fn.inputs.indexOf(input) !== fn.inputs.lastIndexOf(input)) return null;
    return grads.get(input) ?? null;
  });
}

function topologicalOrder(root: Tensor): Tensor[] {
  const order: Tensor[] = [];
  const visited = new Set<Tensor>([root]);
  const stack: [Tensor, number][] = [[root, 0]];
  while (stack.length) {
    const top = stack[stack.length - 1];
    const inputs = top[0].gradFn?.inputs ?? [];
    if (top[1] < inputs.length) {
      const next = inputs[top[1]++];
      if (next && next.requiresGrad && !visited.has(next)) {
        visited.add(next);
        stack.push([next, 0]);
      }
    } else {
      order.push(top[0]);
      stack.pop();
    }
  }
  return order.reverse(); // root first
}

/** The backward pass from `root` (Tensor.backward). */
export function backward(root: Tensor, gradOutput?: Tensor): void {
  if (!root.requiresGrad) {
    throw new Error(`backward(): ${root} does not require grad (no input of the graph has requiresGrad, or it ran under noGrad)`);
  }
  if (!gradOutput && root.size !== 1) {
    throw new Error(`backward(): ${root} is not a scalar; pass the gradient of the output`);
  }
  if (gradOutput && gradOutput.size !== root.size) {
    throw new Error(`backward(): gradient [${gradOutput.shape}] does not match ${root}`);
  }
  const order = topologicalOrder(root);
  const freed = order.find((t) => !t.gradFn && backpropagated.has(t));
  if (freed) {
    throw new Error(
      `backward(): trying to backward through the graph a second time: ${freed === root ? root : `${freed}, an input of ${root},`} ` +
        'was already backpropagated and its saved tensors freed. Run the forward again (there is no retain_graph).',
    );
  }
  const grads = new Map<Tensor, Tensor>();
  const seed = gradOutput ?? onesLike(root);
  grads.set(root, seed);
  const prevEnabled = gradEnabled;
  gradEnabled = false; // backward kernels are not themselves recorded
  try {
    for (const t of order) {
      const g = grads.get(t);
      grads.delete(t);
      if (!g) continue;
      const fn = t.gradFn;
      if (fn) {
        const pending = pendingFor(fn, grads);
        const inputGrads = fn.backward(g, pending);
        fn.inputs.forEach((input, i) => {
          const ig = inputGrads[i];
          if (!ig) return;
          if (!input || !input.requiresGrad) {
            ig.dispose();
            return;
          }
          const prev = grads.get(input);
          if (prev && prev === pending[i]) {
            grads.set(input, ig); // the op added prev in its kernel
            prev.dispose();
          } else if (prev) {
            grads.set(input, addTensors(prev, ig));
            prev.dispose();
            ig.dispose();
          } else {
            grads.set(input, ig);
          }
        });
        releaseGradFn(t);
        if (g !== gradOutput) g.dispose();
      } else if (t.grad) {
        accumulateInto(t.grad, g); // leaves accumulate across backward() calls, like torch
        if (g !== gradOutput) g.dispose();
      } else {
        t.grad = (g.shape.length === t.shape.length ? g : g.view(t.shape)).keep();
        if (t.grad !== g) g.dispose();
      }
    }
  } finally {
    gradEnabled = prevEnabled;
  }
}

