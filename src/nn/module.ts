// Modules: named parameters and children (torch-style names), train/eval, and the basic layers.
import { Tensor, keep } from '../tensor.ts';
import { Device } from '../gpu/device.ts';
import { linear } from '../ops/matmul.ts';
import { layerNorm } from '../ops/layernorm.ts';
import { dropout } from '../ops/elementwise.ts';
import { nextSeed, truncNormal } from './random.ts';

export class Module {
  training = true;
  private readonly params = new Map<string, Tensor>();
  private readonly children = new Map<string, Module>();

  /** Registers (or replaces) a parameter: a kept leaf tensor that requires grad. */
  protected param(name: string, data: Float32Array, shape: readonly number[]): Tensor {
    const old = this.params.get(name);
    old?.grad?.dispose();
    old?.dispose();
    const t = keep(Tensor.fromArray(data, shape, { requiresGrad: true, name, device: Device.default }));
    this.params.set(name, t);
    return t;
  }

  protected getParam(name: string): Tensor | null {
    return this.params.get(name) ?? null;
  }

  protected child<M extends Module>(name: string, m: M): M {
    this.children.set(name, m);
    return m;
  }

  /** Parameters with their dotted names, parents first, in registration order (as torch). */
  *namedParameters(prefix = ''): Generator<[string, Tensor]> {
    for (const [name, p] of this.params) yield [prefix + name, p];
    for (const [name, m] of this.children) yield* m.namedParameters(`${prefix}${name}.`);
  }

  parameters(): Tensor[] {
    return [...this.namedParameters()].map(([, p]) => p);
  }

  *namedModules(prefix = ''): Generator<[string, Module]> {
    yield [prefix.replace(/\.$/, ''), this];
    for (const [name, m] of this.children) yield* m.namedModules(`${prefix}${name}.`);
  }

  /** Replaces a parameter's values (same shape), e.g. when loading a checkpoint. */
  setParameter(name: string, data: Float32Array): void {
    const owner = this.resolve(name);
    const local = name.slice(name.lastIndexOf('.') + 1);
    const p = owner.params.get(local);
    if (!p) throw new Error(`no parameter named "${name}"`);
    if (data.length !== p.size) throw new Error(`parameter "${name}": ${data.length} values for shape [${p.shape}]`);
    p.device.write(p.buffer, 0, data);
  }

  private resolve(name: string): Module {
    let m: Module = this;
    const parts = name.split('.');
    for (const part of parts.slice(0, -1)) {
      const c = m.children.get(part);
      if (!c) throw new Error(`no module "${part}" in "${name}"`);
      m = c;
    }
    return m;
  }

  train(on = true): this {
    for (const [, m] of this.namedModules()) m.training = on;
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  /** Sets every parameter's grad to null (disposing it). */
  zeroGrad(): void {
    for (const p of this.parameters()) {
      p.grad?.dispose();
      p.grad = null;
    }
  }

  /** Frees all parameters. */
  dispose(): void {
    for (const p of this.parameters()) {
      p.grad?.dispose();
      p.dispose();
    }
  }

  numParameters(): number {
    return this.parameters().reduce((a, p) => a + p.size, 0);
  }
}

/** torch.nn.Linear: weight [out, in], bias [out]; HF ViT init: weight ~ trunc_normal(0, std), bias 0. */
export class Linear extends Module {
  constructor(public inFeatures: number, public outFeatures: number, opts: { bias?: boolean; std?: number } = {}) {
    super();
    this.param('weight', truncNormal(inFeatures * outFeatures, opts.std ?? 0.02), [outFeatures, inFeatures]);
    if (opts.bias !== false) this.param('bias', new Float32Array(outFeatures), [outFeatures]);
  }

  get weight(): Tensor {
    return this.getParam('weight')!;
  }

  get bias(): Tensor | null {
    return this.getParam('bias');
  }

  /** Replaces weight and bias with new shapes (head pruning). */
  resize(inFeatures: number, outFeatures: number, weight: Float32Array, bias: Float32Array | null): void {
    this.inFeatures = inFeatures;
    this.outFeatures = outFeatures;
    this.param('weight', weight, [outFeatures, inFeatures]);
    if (bias) this.param('bias', bias, [outFeatures]);
  }

  forward(x: Tensor): Tensor {
    return linear(x, this.weight, this.bias);
  }
}

export class LayerNorm extends Module {
  constructor(readonly dim: number, readonly eps: number) {
    super();
    this.param('weight', new Float32Array(dim).fill(1), [dim]);
    this.param('bias', new Float32Array(dim), [dim]);
  }

  forward(x: Tensor): Tensor {
    return layerNorm(x, this.getParam('weight')!, this.getParam('bias')!, this.eps);
  }
}

export class Dropout extends Module {
  constructor(readonly p: number) {
    super();
  }

  forward(x: Tensor): Tensor {
    if (!this.training || this.p === 0) return x;
    return dropout(x, this.p, nextSeed());
  }
}
