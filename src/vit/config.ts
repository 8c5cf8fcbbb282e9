// Hugging Face ViTConfig: the same snake_case fields and defaults as transformers'
// configuration_vit.py (+ the label fields of PretrainedConfig), read from and written to config.json.

export type SizeSpec = number | readonly [number, number];
export type ProblemType = 'regression' | 'single_label_classification' | 'multi_label_classification';

/** Constructor / fromJSON input: any subset of the config.json fields; unknown fields are kept. */
export interface ViTConfigInit {
  hidden_size?: number;
  num_hidden_layers?: number;
  num_attention_heads?: number;
  intermediate_size?: number;
  hidden_act?: string;
  hidden_dropout_prob?: number;
  attention_probs_dropout_prob?: number;
  initializer_range?: number;
  layer_norm_eps?: number;
  image_size?: SizeSpec;
  patch_size?: SizeSpec;
  num_channels?: number;
  qkv_bias?: boolean;
  encoder_stride?: number;
  /** null/0 mean hidden_size, as in HF */
  pooler_output_size?: number | null;
  pooler_act?: string;
  /** makes id2label LABEL_0..LABEL_{n-1} when id2label is not given; must agree with it otherwise */
  num_labels?: number;
  id2label?: Record<string | number, string>;
  label2id?: Record<string, number>;
  problem_type?: ProblemType | null;
  model_type?: string;
  architectures?: string[] | null;
  [extra: string]: unknown;
}

/** One thing wrong with a config: the fields involved, the message, and for a single field's
 *  type or range what was expected and the value found. */
export interface ConfigProblem {
  fields: string[];
  message: string;
  expected?: string;
  value?: unknown;
}

/** A config that transformers would not accept; `problems` lists every one found. */
export class ViTConfigError extends Error {
  constructor(readonly source: string, readonly problems: ConfigProblem[]) {
    super(problems.length === 1
      ? `${source}: ${problems[0].message}`
      : `${source}: ${problems.length} problems: ${problems.map((p) => p.message).join('; ')}`);
    this.name = 'ViTConfigError';
  }
}

const ALLOWED_PROBLEM_TYPES: readonly ProblemType[] = ['regression', 'single_label_classification', 'multi_label_classification'];

/** Fields with their own handling (and checks); everything else in the input goes to `extra`. */
export const VIT_CONFIG_FIELDS: ReadonlySet<string> = new Set([
  'hidden_size', 'num_hidden_layers', 'num_attention_heads', 'intermediate_size', 'hidden_act',
  'hidden_dropout_prob', 'attention_probs_dropout_prob', 'initializer_range', 'layer_norm_eps',
  'image_size', 'patch_size', 'num_channels', 'qkv_bias', 'encoder_stride', 'pooler_output_size',
  'pooler_act', 'num_labels', 'id2label', 'label2id', 'problem_type', 'model_type', 'architectures',
]);

export class ViTConfig {
  readonly model_type = 'vit';
  readonly hidden_size: number;
  readonly num_hidden_layers: number;
  readonly num_attention_heads: number;
  readonly intermediate_size: number;
  readonly hidden_act: 'gelu';
  readonly hidden_dropout_prob: number;
  readonly attention_probs_dropout_prob: number;
  readonly initializer_range: number;
  readonly layer_norm_eps: number;
  readonly image_size: SizeSpec;
  readonly patch_size: SizeSpec;
  readonly num_channels: number;
  readonly qkv_bias: boolean;
  readonly encoder_stride: number;
  readonly pooler_output_size: number;
  readonly pooler_act: string;
  /** label index -> name; keys are 0..numLabels-1 */
  readonly id2label: Readonly<Record<number, string>>;
  readonly label2id: Readonly<Record<string, number>>;
  readonly problem_type: ProblemType | null;
  readonly architectures: readonly string[] | null;
  /** fields this class does not model (torch_dtype, transformers_version, ...), written back by toJSON */
  readonly extra: Readonly<Record<string, unknown>>;

  /**
   * `source` names where the values come from (a file path) in error messages. Throws a
   * ViTConfigError listing every problem: each field's, then (when those are fine) the checks
   * across fields.
   */
  constructor(init: ViTConfigInit = {}, source = 'ViTConfig') {
    const v = new Validator(init);
    v.modelType();
    this.hidden_size = v.positiveInt('hidden_size', 768);
    this.num_hidden_layers = v.positiveInt('num_hidden_layers', 12);
    this.num_attention_heads = v.positiveInt('num_attention_heads', 12);
    this.intermediate_size = v.positiveInt('intermediate_size', 3072);
    this.hidden_act = v.hiddenAct();
    this.hidden_dropout_prob = v.probability('hidden_dropout_prob', 0.0);
    this.attention_probs_dropout_prob = v.probability('attention_probs_dropout_prob', 0.0);
    this.initializer_range = v.number('initializer_range', 0.02, (x) => x >= 0, 'a finite number >= 0');
    this.layer_norm_eps = v.number('layer_norm_eps', 1e-12, (x) => x > 0, 'a finite number > 0');
    this.image_size = v.size('image_size', 224);
    this.patch_size = v.size('patch_size', 16);
    this.num_channels = v.positiveInt('num_channels', 3);
    this.qkv_bias = v.boolean('qkv_bias', true);
    this.encoder_stride = v.positiveInt('encoder_stride', 16);
    // HF: `pooler_output_size if pooler_output_size else hidden_size`
    this.pooler_output_size = init.pooler_output_size ? v.positiveInt('pooler_output_size', 0) : this.hidden_size;
    this.pooler_act = v.string('pooler_act', 'tanh');
    this.id2label = v.id2label();
    this.label2id = v.label2id(this.id2label);
    this.problem_type = v.problemType();
    this.architectures = v.architectures();

    if (v.problems.length === 0) {
      if (this.hidden_size % this.num_attention_heads !== 0) {
        v.problems.push({ fields: ['hidden_size', 'num_attention_heads'], message: `The hidden size (${this.hidden_size}) is not a multiple of the number of attention heads (${this.num_attention_heads})` });
      }
      const [h, w] = this.imageHW, [ph, pw] = this.patchHW;
      if (h % ph !== 0 || w % pw !== 0) {
        v.problems.push({ fields: ['image_size', 'patch_size'], message: `The image size (${fmtSize(this.image_size)}) is not a multiple of the patch size (${fmtSize(this.patch_size)})` });
      }
    }
    if (v.problems.length) throw new ViTConfigError(source, v.problems);

    const extra: Record<string, unknown> = {};
    for (const [k, val] of Object.entries(init)) if (!VIT_CONFIG_FIELDS.has(k) && val !== undefined) extra[k] = val;
    this.extra = extra;
  }

  /** Builds a config from a parsed config.json; `source` (the file) is named in errors. */
  static fromJSON(obj: unknown, source = 'config.json'): ViTConfig {
    if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) {
      throw new Error(`${source}: a config must be a JSON object, got ${describe(obj)}`);
    }
    return new ViTConfig(obj as ViTConfigInit, source);
  }

  /** An HF-compatible config.json object (id2label keys as strings, as json.dumps writes them). */
  toJSON(): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    if (this.architectures) out.architectures = [...this.architectures];
    out.model_type = this.model_type;
    Object.assign(out, {
      hidden_size: this.hidden_size,
      num_hidden_layers: this.num_hidden_layers,
      num_attention_heads: this.num_attention_heads,
      intermediate_size: this.intermediate_size,
      hidden_act: this.hidden_act,
      hidden_dropout_prob: this.hidden_dropout_prob,
      attention_probs_dropout_prob: this.attention_probs_dropout_prob,
      initializer_range: this.initializer_range,
      layer_norm_eps: this.layer_norm_eps,
      image_size: typeof this.image_size === 'number' ? this.image_size : [...this.image_size],
      patch_size: typeof this.patch_size === 'number' ? this.patch_size : [...this.patch_size],
      num_channels: this.num_channels,
      qkv_bias: this.qkv_bias,
      encoder_stride: this.encoder_stride,
      pooler_output_size: this.pooler_output_size,
      pooler_act: this.pooler_act,
      num_labels: this.numLabels,
      id2label: Object.fromEntries(Object.entries(this.id2label)),
      label2id: { ...this.label2id },
    });
    if (this.problem_type !== null) out.problem_type = this.problem_type;
    for (const [k, val] of Object.entries(this.extra)) out[k] = structuredClone(val);
    return out;
  }

  /** [height, width] of the input image. */
  get imageHW(): [number, number] { return pair(this.image_size); }
  /** [height, width] of a patch. */
  get patchHW(): [number, number] { return pair(this.patch_size); }
  /** T: patches per image. */
  get numPatches(): number {
    const [h, w] = this.imageHW, [ph, pw] = this.patchHW;
    return (h / ph) * (w / pw);
  }
  /** S = T + 1: tokens including CLS. */
  get seqLength(): number { return this.numPatches + 1; }
  get headDim(): number { return this.hidden_size / this.num_attention_heads; }
  get numLabels(): number { return Object.keys(this.id2label).length; }
  /** Label names in index order. */
  get labels(): string[] {
    return Array.from({ length: this.numLabels }, (_, i) => this.id2label[i]);
  }
}

function pair(s: SizeSpec): [number, number] {
  return typeof s === 'number' ? [s, s] : [s[0], s[1]];
}

function fmtSize(s: SizeSpec): string {
  return typeof s === 'number' ? String(s) : `[${s[0]}, ${s[1]}]`;
}

function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (typeof v === 'string') return JSON.stringify(v) + ' (string)';
  if (Array.isArray(v)) return `${JSON.stringify(v)} (array)`;
  if (typeof v === 'object') return `${JSON.stringify(v)} (object)`;
  return `${String(v)} (${typeof v})`;
}

/** A field's problem, thrown inside one reader and recorded by `Validator.read`. */
class Rejected extends Error {
  constructor(readonly problem: ConfigProblem) {
    super(problem.message);
  }
}

/**
 * Reads and checks each field of a ViTConfigInit. A bad field is recorded in `problems` (naming
 * the field and what was expected) and its default used, so that every field gets checked.
 */
class Validator {
  readonly problems: ConfigProblem[] = [];

  constructor(private readonly init: ViTConfigInit) {}

  private fail(field: string, expected: string, value: unknown = this.init[field]): never {
    throw new Rejected({ fields: [field], message: `${field} must be ${expected}, got ${describe(value)}`, expected, value });
  }

  private reject(fields: string[], message: string): never {
    throw new Rejected({ fields, message });
  }

  /** The value `read` returns, or `fallback` with its problem recorded. */
  private read<T>(fallback: T, read: () => T): T {
    try {
      return read();
    } catch (e) {
      if (!(e instanceof Rejected)) throw e;
      this.problems.push(e.problem);
      return fallback;
    }
  }

  private get(field: string): unknown {
    return this.init[field];
  }

  modelType(): void {
    this.read(undefined, () => {
      const v = this.get('model_type');
      if (v !== undefined && v !== 'vit') this.fail('model_type', `"vit" (this is a ViTConfig)`);
    });
  }

  positiveInt(field: string, fallback: number): number {
    return this.read(fallback, () => {
      const v = this.get(field);
      if (v === undefined) return fallback;
      if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) this.fail(field, 'a positive integer');
      return v;
    });
  }

  number(field: string, fallback: number, ok: (x: number) => boolean, expected: string): number {
    return this.read(fallback, () => {
      const v = this.get(field);
      if (v === undefined) return fallback;
      if (typeof v !== 'number' || !Number.isFinite(v) || !ok(v)) this.fail(field, expected);
      return v;
    });
  }

  probability(field: string, fallback: number): number {
    return this.number(field, fallback, (x) => x >= 0 && x < 1, 'a probability in [0, 1)');
  }

  boolean(field: string, fallback: boolean): boolean {
    return this.read(fallback, () => {
      const v = this.get(field);
      if (v === undefined) return fallback;
      if (typeof v !== 'boolean') this.fail(field, 'true or false');
      return v;
    });
  }

  string(field: string, fallback: string): string {
    return this.read(fallback, () => {
      const v = this.get(field);
      if (v === undefined) return fallback;
      if (typeof v !== 'string') this.fail(field, 'a string');
      return v;
    });
  }

  hiddenAct(): 'gelu' {
    const v = this.string('hidden_act', 'gelu');
    return this.read('gelu', () => {
      if (v !== 'gelu') {
        this.reject(['hidden_act'], `hidden_act "${v}" is not supported: only the exact-erf "gelu" ` +
          `(0.5·x·(1 + erf(x/√2)), HF's "gelu") is implemented`);
      }
      return 'gelu';
    });
  }

  /** An int or an [h, w] pair of ints, as HF accepts for image_size and patch_size. */
  size(field: string, fallback: number): SizeSpec {
    return this.read<SizeSpec>(fallback, () => {
      const v = this.get(field);
      if (v === undefined) return fallback;
      const isPosInt = (x: unknown) => typeof x === 'number' && Number.isSafeInteger(x) && x > 0;
      if (isPosInt(v)) return v as number;
      if (Array.isArray(v) && v.length === 2 && v.every(isPosInt)) return [v[0], v[1]] as const;
      return this.fail(field, 'a positive integer or an [height, width] pair of positive integers');
    });
  }

  /** id2label from the input, or LABEL_i for num_labels (default 2) as HF's PretrainedConfig. */
  id2label(): Record<number, string> {
    const labels = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [i, `LABEL_${i}`]));
    return this.read(labels(2), () => this.readId2label(labels));
  }

  private readId2label(labels: (n: number) => Record<number, string>): Record<number, string> {
    const given = this.get('id2label');
    const numLabels = this.get('num_labels');
    if (numLabels !== undefined && (typeof numLabels !== 'number' || !Number.isSafeInteger(numLabels) || numLabels <= 0)) {
      this.fail('num_labels', 'a positive integer');
    }
    if (given === undefined || given === null) return labels((numLabels as number | undefined) ?? 2);
    if (typeof given !== 'object' || Array.isArray(given)) this.fail('id2label', 'an object {"0": "name", ...}');
    const entries = Object.entries(given as Record<string, unknown>);
    const out: Record<number, string> = {};
    for (const [key, name] of entries) {
      const index = Number(key);
      if (!/^(0|[1-9][0-9]*)$/.test(key) || index >= entries.length) {
        this.fail('id2label', `an object whose keys are the label indices 0..${entries.length - 1} (bad key ${JSON.stringify(key)})`, given);
      }
      if (typeof name !== 'string') this.fail('id2label', `an object of label names (strings); label ${key} is ${describe(name)}`, given);
      out[index] = name as string;
    }
    if (entries.length === 0) this.fail('id2label', 'a non-empty object', given);
    if (numLabels !== undefined && numLabels !== entries.length) {
      this.reject(['num_labels', 'id2label'], `num_labels=${numLabels} is incompatible with the id2label map of length ${entries.length}`);
    }
    return out;
  }

  /** label2id as given (HF keeps it even when label names repeat), else inverted id2label. */
  label2id(id2label: Record<number, string>): Record<string, number> {
    const inverted = Object.fromEntries(Object.entries(id2label).map(([i, name]) => [name, Number(i)]));
    return this.read(inverted, () => this.readLabel2id(inverted));
  }

  private readLabel2id(inverted: Record<string, number>): Record<string, number> {
    const given = this.get('label2id');
    if (given === undefined || given === null) return inverted;
    if (typeof given !== 'object' || Array.isArray(given)) this.fail('label2id', 'an object {"name": index, ...}');
    const out: Record<string, number> = {};
    for (const [name, index] of Object.entries(given as Record<string, unknown>)) {
      if (typeof index !== 'number' || !Number.isSafeInteger(index) || index < 0) {
        this.fail('label2id', `an object of non-negative integer indices; "${name}" is ${describe(index)}`, given);
      }
      out[name] = index as number;
    }
    return out;
  }

  problemType(): ProblemType | null {
    return this.read(null, () => {
      const v = this.get('problem_type');
      if (v === undefined || v === null) return null;
      if (!ALLOWED_PROBLEM_TYPES.includes(v as ProblemType)) {
        this.reject(['problem_type'], `The config parameter \`problem_type\` was not understood: received ${describe(v)} ` +
          `but only 'regression', 'single_label_classification' and 'multi_label_classification' are valid.`);
      }
      return v as ProblemType;
    });
  }

  architectures(): string[] | null {
    return this.read(null, () => {
      const v = this.get('architectures');
      if (v === undefined || v === null) return null;
      if (!Array.isArray(v) || !v.every((a) => typeof a === 'string')) this.fail('architectures', 'an array of strings');
      return [...(v as string[])];
    });
  }
}
