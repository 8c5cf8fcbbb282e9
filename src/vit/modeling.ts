// The Vision Transformer with Hugging Face `modeling_vit.py` semantics and parameter names.
// Each module's forward composes recorded ops; their backward runs on the autograd tape.
import { Tensor, tidy, disposeOnThrow } from '../tensor.ts';
import { Module, Linear, LayerNorm, Dropout } from '../nn/module.ts';
import { truncNormal, getRngState, setRngState, nextSeed } from '../nn/random.ts';
import { linear } from '../ops/matmul.ts';
import { linearGelu, linearResidual, mlpResidual } from '../ops/fused.ts';
import { record, needsGrad, noGrad, withGrad } from '../autograd.ts';
import { add, tanh, axpby, mul } from '../ops/elementwise.ts';
import { mean } from '../ops/reduce.ts';
import { reshape } from '../ops/shape.ts';
import { attention } from '../ops/attention.ts';
import { patchify, embeddings, selectToken } from '../ops/patchify.ts';
import { crossEntropy } from '../ops/loss.ts';
import { ViTConfig, type ViTConfigInit } from './config.ts';
import { loadStateDict, stateDict } from './pretrained.ts';
import { checkpointBytes, checkpointFiles, checkpointWriter, readCheckpoint, type CheckpointSource, type CheckpointWriter } from './checkpoint.ts';

/** A head mask: one factor per head for every layer ([heads]) or per layer ([layers][heads]). */
export type HeadMask = readonly number[] | readonly (readonly number[])[];

export interface ViTForwardOptions {
  outputAttentions?: boolean;
  outputHiddenStates?: boolean;
  headMask?: HeadMask | null;
}

export class ViTPatchEmbeddings extends Module {
  readonly imageSize: [number, number];
  readonly patchSize: [number, number];
  readonly numChannels: number;
  readonly numPatches: number;
  readonly projection: ConvAsLinear;

  constructor(config: ViTConfig) {
    super();
    this.imageSize = config.imageHW;
    this.patchSize = config.patchHW;
    this.numChannels = config.num_channels;
    this.numPatches = (this.imageSize[0] / this.patchSize[0]) * (this.imageSize[1] / this.patchSize[1]);
    const fanIn = this.numChannels * this.patchSize[0] * this.patchSize[1];
    // Conv2d(C, D, kernel = stride = P): weight [D, C, P, P], applied as a matmul over im2col patches.
    this.projection = this.child('projection', new ConvAsLinear(fanIn, config.hidden_size, config.initializer_range,
      [config.hidden_size, this.numChannels, this.patchSize[0], this.patchSize[1]]));
  }

  forward(pixelValues: Tensor): Tensor {
    const [, c, h, w] = pixelValues.shape;
    if (pixelValues.shape.length !== 4) {
      throw new Error(`pixel_values must be [batch, channels, height, width], got [${pixelValues.shape}]`);
    }
    if (c !== this.numChannels) {
      throw new Error(`Make sure that the channel dimension of the pixel values match with the one set in the configuration: got ${c} channels, expected ${this.numChannels}.`);
    }
    if (h !== this.imageSize[0] || w !== this.imageSize[1]) {
      throw new Error(`Input image size (${h}*${w}) doesn't match model (${this.imageSize[0]}*${this.imageSize[1]}).`);
    }
    return this.projection.forward(patchify(pixelValues, this.patchSize));
  }
}

/** A Conv2d with kernel = stride whose weight keeps torch's [D, C, P, P] shape and name. */
class ConvAsLinear extends Module {
  constructor(readonly fanIn: number, readonly out: number, std: number, shape: number[]) {
    super();
    this.param('weight', truncNormal(out * fanIn, std), shape);
    this.param('bias', new Float32Array(out), [out]);
  }

  forward(patches: Tensor): Tensor {
    return linear(patches, reshape(this.getParam('weight')!, [this.out, this.fanIn]), this.getParam('bias')!);
  }
}

export class ViTEmbeddings extends Module {
  readonly patch_embeddings: ViTPatchEmbeddings;
  readonly dropout: Dropout;

  constructor(readonly config: ViTConfig) {
    super();
    const d = config.hidden_size;
    this.param('cls_token', truncNormal(d, config.initializer_range), [1, 1, d]);
    this.patch_embeddings = new ViTPatchEmbeddings(config);
    this.param('position_embeddings', truncNormal((this.patch_embeddings.numPatches + 1) * d, config.initializer_range),
      [1, this.patch_embeddings.numPatches + 1, d]);
    this.child('patch_embeddings', this.patch_embeddings);
    this.dropout = this.child('dropout', new Dropout(config.hidden_dropout_prob));
  }

  forward(pixelValues: Tensor): Tensor {
    const patches = this.patch_embeddings.forward(pixelValues);
    const h = embeddings(patches, this.getParam('cls_token')!, this.getParam('position_embeddings')!);
    return this.dropout.forward(h);
  }
}

export class ViTSelfAttention extends Module {
  numHeads: number;
  readonly headDim: number;
  allHeadSize: number;
  readonly query: Linear;
  readonly key: Linear;
  readonly value: Linear;
  readonly dropoutProb: number;

  constructor(config: ViTConfig) {
    super();
    if (config.hidden_size % config.num_attention_heads !== 0) {
      throw new Error(`The hidden size (${config.hidden_size}) is not a multiple of the number of attention heads (${config.num_attention_heads})`);
    }
    this.numHeads = config.num_attention_heads;
    this.headDim = config.hidden_size / config.num_attention_heads;
    this.allHeadSize = this.numHeads * this.headDim;
    const opts = { bias: config.qkv_bias, std: config.initializer_range };
    this.query = this.child('query', new Linear(config.hidden_size, this.allHeadSize, opts));
    this.key = this.child('key', new Linear(config.hidden_size, this.allHeadSize, opts));
    this.value = this.child('value', new Linear(config.hidden_size, this.allHeadSize, opts));
    this.dropoutProb = config.attention_probs_dropout_prob;
  }

  forward(h: Tensor, headMask: readonly number[] | null, outputAttentions: boolean): { context: Tensor; probs: Tensor | null } {
    const q = this.query.forward(h);
    const k = this.key.forward(h);
    const v = this.value.forward(h);
    const dropout = this.training ? this.dropoutProb : 0;
    return attention(q, k, v, {
      heads: this.numHeads, scale: 1 / Math.sqrt(this.headDim), headMask,
      dropout, seed: dropout > 0 ? nextSeed() : 0, returnProbs: outputAttentions,
    });
  }
}


export class ViTSelfOutput extends Module {
  readonly dense: Linear;
  readonly dropout: Dropout;
  constructor(config: ViTConfig, inFeatures = config.hidden_size) {
    super();
    this.dense = this.child('dense', new Linear(inFeatures, config.hidden_size, { std: config.initializer_range }));
    this.dropout = this.child('dropout', new Dropout(config.hidden_dropout_prob));
  }

  /**
   * HF adds the residual in ViTLayer; given here, it is added in the matmul's epilogue (or after the
   * dropout, while that is active).
   */
  forward(h: Tensor, residual: Tensor | null = null): Tensor {
    return denseDropoutResidual(this.dense, this.dropout, h, residual);
  }
}

export class ViTAttention extends Module {
  readonly attention: ViTSelfAttention;
  readonly output: ViTSelfOutput;
  readonly prunedHeads = new Set<number>();

  constructor(config: ViTConfig) {
    super();
    this.attention = this.child('attention', new ViTSelfAttention(config));
    this.output = this.child('output', new ViTSelfOutput(config));
  }

  /** `residual`: added to the output (see ViTSelfOutput) */
  forward(h: Tensor, headMask: readonly number[] | null, outputAttentions: boolean, residual: Tensor | null = null) {
    const { context, probs } = this.attention.forward(h, headMask, outputAttentions);
    return { out: this.output.forward(context, residual), probs };
  }

  /**
   * Removes heads (indices in the original numbering, as HF): drops their rows of query/key/value
   * and their columns of the output dense layer.
   */
  async pruneHeads(heads: Iterable<number>): Promise<void> {
    const sa = this.attention;
    const remove = new Set([...heads].filter((h) => !this.prunedHeads.has(h)));
    if (remove.size === 0) return;
    // Position of each original head among the heads still present.
    const original = [...Array(sa.numHeads + this.prunedHeads.size).keys()].filter((h) => !this.prunedHeads.has(h));
    for (const h of remove) {
      if (!original.includes(h)) throw new Error(`pruneHeads: head ${h} does not exist (layer has ${original.length} heads left)`);
    }
    const keepPos = original.map((h, i) => [h, i] as const).filter(([h]) => !remove.has(h)).map(([, i]) => i);
    const hd = sa.headDim;
    const keepFeatures = keepPos.flatMap((i) => [...Array(hd).keys()].map((d) => i * hd + d));
    const inF = sa.query.inFeatures;
    for (const lin of [sa.query, sa.key, sa.value]) {
      const w = await lin.weight.toArray();
      const b = lin.bias ? await lin.bias.toArray() : null;
      const nw = new Float32Array(keepFeatures.length * inF);
      keepFeatures.forEach((f, r) => nw.set(w.subarray(f * inF, (f + 1) * inF), r * inF));
      lin.resize(inF, keepFeatures.length, nw, b ? Float32Array.from(keepFeatures, (f) => b[f]) : null);
    }
    const dense = this.output.dense;
    const w = await dense.weight.toArray();
    const oldIn = dense.inFeatures;
    const nw = new Float32Array(dense.outFeatures * keepFeatures.length);
    for (let o = 0; o < dense.outFeatures; o++) {
      keepFeatures.forEach((f, c) => (nw[o * keepFeatures.length + c] = w[o * oldIn + f]));
    }
    dense.resize(keepFeatures.length, dense.outFeatures, nw, null);
    sa.numHeads = keepPos.length;
    sa.allHeadSize = sa.numHeads * hd;
    for (const h of remove) this.prunedHeads.add(h);
  }
}

export class ViTIntermediate extends Module {
  readonly dense: Linear;
  constructor(config: ViTConfig) {
    super();
    if (config.hidden_act !== 'gelu') throw new Error(`hidden_act "${config.hidden_act}" is not supported (only "gelu")`);
    this.dense = this.child('dense', new Linear(config.hidden_size, config.intermediate_size, { std: config.initializer_range }));
  }

  forward(h: Tensor): Tensor {
    return linearGelu(h, this.dense.weight, this.dense.bias); // = gelu(dense(h)), the GELU in the matmul's epilogue
  }
}

export class ViTOutput extends Module {
  readonly dense: Linear;
  readonly dropout: Dropout;
  constructor(config: ViTConfig) {
    super();
    this.dense = this.child('dense', new Linear(config.intermediate_size, config.hidden_size, { std: config.initializer_range }));
    this.dropout = this.child('dropout', new Dropout(config.hidden_dropout_prob));
  }

  forward(h: Tensor, residual: Tensor): Tensor {
    return denseDropoutResidual(this.dense, this.dropout, h, residual);
  }
}

/** dropout(dense(h)) + residual (without one if null), the add in the matmul's epilogue unless dropout is active. */
function denseDropoutResidual(dense: Linear, dropout: Dropout, h: Tensor, residual: Tensor | null): Tensor {
  if (residual && (!dropout.training || dropout.p === 0)) return linearResidual(h, dense.weight, dense.bias, residual);
  const out = dropout.forward(dense.forward(h));
  return residual ? add(out, residual) : out;
}

/** Pre-LN transformer block: h + attn(LN(h)), then h + MLP(LN(h)). */
export class ViTLayer extends Module {
  readonly layernorm_before: LayerNorm;
  readonly attention: ViTAttention;
  readonly layernorm_after: LayerNorm;
  readonly intermediate: ViTIntermediate;
  readonly output: ViTOutput;

  constructor(config: ViTConfig) {
    super();
    this.attention = this.child('attention', new ViTAttention(config));
    this.intermediate = this.child('intermediate', new ViTIntermediate(config));
    this.output = this.child('output', new ViTOutput(config));
    this.layernorm_before = this.child('layernorm_before', new LayerNorm(config.hidden_size, config.layer_norm_eps));
    this.layernorm_after = this.child('layernorm_after', new LayerNorm(config.hidden_size, config.layer_norm_eps));
  }

  forward(h: Tensor, headMask: readonly number[] | null = null, outputAttentions = false) {
    const { out: h1, probs } = this.attention.forward(this.layernorm_before.forward(h), headMask, outputAttentions, h);
    const ln = this.layernorm_after.forward(h1);
    const { intermediate: up, output: down } = this;
    // output.forward(intermediate.forward(ln), h1) as one op, whose backward fuses the GELU's (no dropout between)
    const y = down.dropout.training && down.dropout.p > 0
      ? down.forward(up.forward(ln), h1)
      : mlpResidual(ln, up.dense.weight, up.dense.bias, down.dense.weight, down.dense.bias, h1);
    return { hidden: y, probs };
  }
}

/**
 * Gradient checkpointing: runs `fn` without recording and keeps only its input; backward
 * recomputes the forward (same dropout seeds) and backpropagates through it.
 */
function checkpoint(fn: (x: Tensor) => Tensor, x: Tensor, params: Tensor[]): Tensor {
  if (!needsGrad(x, ...params)) return fn(x);
  const rng = getRngState();
  const out = tidy(() => noGrad(() => fn(x)));
  return record(out, 'checkpoint', [x, ...params], (g) => {
    const after = getRngState();
    setRngState(rng);
    const dx = tidy(() => withGrad(true, () => {
      const xLeaf = x.view(x.shape);
      xLeaf.requiresGrad = true;
      const y = fn(xLeaf);
      y.backward(g); // parameters receive their gradients directly (they are leaves)
      const grad = xLeaf.grad!;
      xLeaf.grad = null;
      return grad;
    }));
    setRngState(after);
    return [dx, ...params.map(() => null)];
  });
}

export class ViTEncoder extends Module {
  readonly layer: ViTLayer[] = [];
  gradientCheckpointing = false;

  constructor(config: ViTConfig) {
    super();
    const layers = new ViTLayerList();
    for (let i = 0; i < config.num_hidden_layers; i++) this.layer.push(layers.add(new ViTLayer(config)));
    this.child('layer', layers);
  }

  forward(h: Tensor, opts: { headMask?: (readonly number[] | null)[]; outputAttentions?: boolean; outputHiddenStates?: boolean } = {}) {
    const hiddenStates: Tensor[] = [];
    const attentions: Tensor[] = [];
    this.layer.forEach((layer, i) => {
      if (opts.outputHiddenStates) hiddenStates.push(h);
      const mask = opts.headMask?.[i] ?? null;
      if (this.gradientCheckpointing && this.training && !opts.outputAttentions) {
        h = checkpoint((x) => layer.forward(x, mask, false).hidden, h, layer.parameters());
      } else {
        const { hidden, probs } = layer.forward(h, mask, !!opts.outputAttentions);
        h = hidden;
        if (probs) attentions.push(probs);
      }
    });
    if (opts.outputHiddenStates) hiddenStates.push(h);
    return { lastHiddenState: h, hiddenStates, attentions };
  }
}

/** `encoder.layer.{i}` naming. */
class ViTLayerList extends Module {
  private n = 0;
  add(layer: ViTLayer): ViTLayer {
    return this.child(String(this.n++), layer);
  }
}

export class ViTPooler extends Module {
  readonly dense: Linear;
  constructor(config: ViTConfig) {
    super();
    if (config.pooler_act !== 'tanh') throw new Error(`pooler_act "${config.pooler_act}" is not supported (only "tanh")`);
    this.dense = this.child('dense', new Linear(config.hidden_size, config.pooler_output_size ?? config.hidden_size, { std: config.initializer_range }));
  }

  forward(h: Tensor): Tensor {
    return tanh(this.dense.forward(selectToken(h, 0)));
  }
}

export interface ViTModelOutput {
  lastHiddenState: Tensor;
  poolerOutput: Tensor | null;
  hiddenStates: Tensor[] | null;
  attentions: Tensor[] | null;
}

function expandHeadMask(mask: HeadMask | null | undefined, layers: number): (readonly number[] | null)[] | undefined {
  if (!mask) return undefined;
  if (mask.length && Array.isArray(mask[0])) {
    if (mask.length !== layers) throw new Error(`headMask has ${mask.length} rows, expected one per layer (${layers})`);
    return mask as (readonly number[])[];
  }
  return Array(layers).fill(mask as readonly number[]);
}

export class ViTModel extends Module {
  readonly config: ViTConfig;
  readonly embeddings: ViTEmbeddings;
  readonly encoder: ViTEncoder;
  readonly layernorm: LayerNorm;
  readonly pooler: ViTPooler | null;

  constructor(config: ViTConfig | ViTConfigInit = {}, opts: { addPoolingLayer?: boolean } = {}) {
    super();
    this.config = config instanceof ViTConfig ? config : new ViTConfig(config);
    this.embeddings = this.child('embeddings', new ViTEmbeddings(this.config));
    this.encoder = this.child('encoder', new ViTEncoder(this.config));
    this.layernorm = this.child('layernorm', new LayerNorm(this.config.hidden_size, this.config.layer_norm_eps));
    this.pooler = opts.addPoolingLayer === false ? null : this.child('pooler', new ViTPooler(this.config));
  }

  /** A call that throws (bad head mask) frees the tensors it made. */
  forward(pixelValues: Tensor, opts: ViTForwardOptions = {}): ViTModelOutput {
    return disposeOnThrow(() => {
      const h = this.embeddings.forward(pixelValues);
      const enc = this.encoder.forward(h, {
        headMask: expandHeadMask(opts.headMask, this.config.num_hidden_layers),
        outputAttentions: opts.outputAttentions,
        outputHiddenStates: opts.outputHiddenStates,
      });
      const last = this.layernorm.forward(enc.lastHiddenState);
      return {
        lastHiddenState: last,
        poolerOutput: this.pooler ? this.pooler.forward(last) : null,
        hiddenStates: opts.outputHiddenStates ? enc.hiddenStates : null,
        attentions: opts.outputAttentions ? enc.attentions : null,
      };
    });
  }

  /** Prunes heads per layer: `{ 0: [1, 2], 3: [0] }`. */
  async pruneHeads(heads: Record<number, number[]>): Promise<void> {
    for (const [layer, hs] of Object.entries(heads)) {
      const l = this.encoder.layer[Number(layer)];
      if (!l) throw new Error(`pruneHeads: no layer ${layer}`);
      await l.attention.pruneHeads(hs);
    }
  }

  /** Turns gradient checkpointing on (recompute each layer's forward in backward). */
  gradientCheckpointingEnable(on = true): void {
    this.encoder.gradientCheckpointing = on;
  }

  /**
   * Loads an HF checkpoint (config.json + model.safetensors), "vit." prefix or not: a folder (Node), a
   * URL, or files in memory (see CheckpointSource).
   */
  static async fromPretrained(source: CheckpointSource, opts: FromPretrainedOptions & { addPoolingLayer?: boolean } = {}): Promise<ViTModel> {
    const { ck, config } = await readPretrained(source, opts);
    const model = new ViTModel(config, { addPoolingLayer: opts.addPoolingLayer });
    loadStateDict(model, ck.tensors, {
      source: ck.weightsPath, ignoreMismatchedSizes: opts.ignoreMismatchedSizes, warn: opts.warn,
      allowMissing: ['pooler.'], allowUnexpected: ['classifier.', 'pooler.'],
    });
    return model.eval();
  }

  /** Writes config.json + model.safetensors (+ extra files) into a folder (Node; atomically) or a writer. */
  async savePretrained(target: string | CheckpointWriter, extraFiles?: Record<string, Uint8Array | string>): Promise<void> {
    await checkpointWriter(target).write(await this.pretrainedFiles(extraFiles));
  }

  /** The files savePretrained writes, by name (e.g. to offer as downloads in a browser). */
  async pretrainedFiles(extraFiles?: Record<string, Uint8Array | string>): Promise<Map<string, Uint8Array>> {
    return pretrainedFilesOf(this, this.config, 'ViTModel', extraFiles);
  }
}

export interface ImageClassifierOutput extends ViTModelOutput {
  logits: Tensor;
  loss: Tensor | null;
}

export interface ClassificationForwardOptions extends ViTForwardOptions {
  /** integer class indices (single-label) or, with num_labels == 1, regression targets */
  labels?: readonly number[] | Int32Array | Float32Array | Tensor | null;
  labelSmoothing?: number;
}

export class ViTForImageClassification extends Module {
  readonly config: ViTConfig;
  readonly vit: ViTModel;
  readonly classifier: Linear;

  constructor(config: ViTConfig | ViTConfigInit = {}) {
    super();
    this.config = config instanceof ViTConfig ? config : new ViTConfig(config);
    this.vit = this.child('vit', new ViTModel(this.config, { addPoolingLayer: false }));
    this.classifier = this.child('classifier', new Linear(this.config.hidden_size, this.config.numLabels, { std: this.config.initializer_range }));
  }

  /** With labels the output's loss is a Tensor (typed so), without it is null. */
  forward(pixelValues: Tensor, opts: ClassificationForwardOptions & { labels: NonNullable<ClassificationForwardOptions['labels']> }): ImageClassifierOutput & { loss: Tensor };
  forward(pixelValues: Tensor, opts?: ClassificationForwardOptions): ImageClassifierOutput;
  forward(pixelValues: Tensor, opts: ClassificationForwardOptions = {}): ImageClassifierOutput {
    // labels are checked after the forward: a call that throws frees the tensors it made
    return disposeOnThrow(() => {
      const out = this.vit.forward(pixelValues, opts);
      const logits = this.classifier.forward(selectToken(out.lastHiddenState, 0));
      let loss: Tensor | null = null;
      if (opts.labels != null) loss = this.loss(logits, opts.labels, opts.labelSmoothing ?? 0);
      return { ...out, logits, loss };
    });
  }

  /**
   * Loads an HF checkpoint (config.json + model.safetensors): a folder (Node), a URL, or files in memory
   * (see CheckpointSource). A bare ViTModel checkpoint (with or without pooler) loads with a freshly
   * initialised classifier and a warning.
   */
  static async fromPretrained(source: CheckpointSource, opts: FromPretrainedOptions = {}): Promise<ViTForImageClassification> {
    const { ck, config } = await readPretrained(source, opts);
    const model = new ViTForImageClassification(config);
    loadStateDict(model, ck.tensors, {
      source: ck.weightsPath, ignoreMismatchedSizes: opts.ignoreMismatchedSizes, warn: opts.warn,
      allowMissing: ['classifier.'], allowUnexpected: ['vit.pooler.'],
    });
    return model.eval();
  }

  /** Writes config.json + model.safetensors (+ extra files) into a folder (Node; atomically) or a writer. */
  async savePretrained(target: string | CheckpointWriter, extraFiles?: Record<string, Uint8Array | string>): Promise<void> {
    await checkpointWriter(target).write(await this.pretrainedFiles(extraFiles));
  }

  /** The files savePretrained writes, by name (e.g. to offer as downloads in a browser). */
  async pretrainedFiles(extraFiles?: Record<string, Uint8Array | string>): Promise<Map<string, Uint8Array>> {
    return pretrainedFilesOf(this, this.config, 'ViTForImageClassification', extraFiles);
  }

  private loss(logits: Tensor, labels: NonNullable<ClassificationForwardOptions['labels']>, labelSmoothing: number): Tensor {
    const [batch] = logits.shape;
    if (this.config.numLabels === 1) {
      // HF: num_labels == 1 is regression with mean squared error.
      const target = labels instanceof Tensor ? labels : Tensor.fromArray(Float32Array.from(labels as ArrayLike<number>), [batch, 1]);
      const d = axpby(1, logits, -1, target);
      return mean(mul(d, d));
    }
    if (!(labels instanceof Tensor) && labels.length !== batch) {
      throw new Error(`labels has ${labels.length} entries but the batch has ${batch} images`);
    }
    return crossEntropy(logits, labels as readonly number[] | Int32Array | Tensor, { labelSmoothing });
  }
}

export interface FromPretrainedOptions {
  /** config.json fields to override, e.g. { num_labels: 2 } for a new head */
  config?: Record<string, unknown>;
  /** re-initialise tensors whose shape differs (e.g. a 1000-class head loaded for 2 classes) */
  ignoreMismatchedSizes?: boolean;
  warn?: boolean;
}

async function readPretrained(source: CheckpointSource, opts: FromPretrainedOptions) {
  const ck = await readCheckpoint(checkpointFiles(source));
  let config = ck.config;
  if (opts.config) {
    const base = config.toJSON() as Record<string, unknown>;
    if ('num_labels' in opts.config && !('id2label' in opts.config)) {
      delete base.id2label;
      delete base.label2id;
    }
    config = ViTConfig.fromJSON({ ...base, ...opts.config }, `${ck.configPath} (with overrides)`);
  }
  return { ck, config };
}

async function pretrainedFilesOf(model: Module, config: ViTConfig, architecture: string, extraFiles?: Record<string, Uint8Array | string>) {
  const json = config.toJSON() as Record<string, unknown>;
  json.architectures = [architecture];
  return checkpointBytes(ViTConfig.fromJSON(json), await stateDict(model), extraFiles);
}

