// Hugging Face checkpoints: state dicts by HF parameter name, loading with the same name
// conventions as transformers (bare ViTModel <-> "vit." prefix, pooler, fresh classifier heads).
import type { Module } from '../nn/module.ts';

export interface StateTensor {
  dtype: string;
  shape: readonly number[];
  data: ArrayLike<number> | Float32Array | BigInt64Array | Int32Array | Uint8Array;
}

export interface LoadReport {
  /** model parameters not in the checkpoint, freshly initialised */
  newlyInitialized: string[];
  /** checkpoint tensors the model does not use */
  ignored: string[];
  /** tensors skipped because their shape differs (ignoreMismatchedSizes) */
  mismatched: { name: string; checkpoint: readonly number[]; model: readonly number[] }[];
}

export interface LoadOptions {
  /** where the tensors came from, for messages */
  source?: string;
  /** skip tensors whose shape differs from the model's (fresh init instead), as HF's flag */
  ignoreMismatchedSizes?: boolean;
  /** names (prefixes) that may be missing from the checkpoint, e.g. a classifier head */
  allowMissing?: string[];
  /** names (prefixes) that may be present without a use, e.g. "vit.pooler." */
  allowUnexpected?: string[];
  /** print HF-style warnings for newly initialised or ignored tensors (default true) */
  warn?: boolean;
}

const FLOAT_DTYPES = new Set(['F32', 'F16', 'BF16', 'F64']);

/** Maps checkpoint names onto the model's: adds or strips the "vit." prefix as transformers does. */
function renameForModel(names: string[], modelNames: Set<string>): Map<string, string> {
  const modelHasPrefix = [...modelNames].some((n) => n.startsWith('vit.'));
  const ckptHasPrefix = names.some((n) => n.startsWith('vit.'));
  const map = new Map<string, string>();
  for (const n of names) {
    let m = n;
    if (modelHasPrefix && !ckptHasPrefix && !modelNames.has(n)) m = `vit.${n}`;
    if (!modelHasPrefix && ckptHasPrefix && n.startsWith('vit.')) m = n.slice(4);
    map.set(n, m);
  }
  return map;
}

/** Loads tensors into a model's parameters, with clear errors for anything that does not fit. */
export function loadStateDict(model: Module, tensors: Map<string, StateTensor>, opts: LoadOptions = {}): LoadReport {
  const source = opts.source ?? 'state dict';
  const params = new Map(model.namedParameters());
  const modelNames = new Set(params.keys());
  const rename = renameForModel([...tensors.keys()], modelNames);
  const matches = (name: string, prefixes: string[] = []) => prefixes.some((p) => name.startsWith(p));

  const report: LoadReport = { newlyInitialized: [], ignored: [], mismatched: [] };
  const unexpected: string[] = [];
  const loaded = new Set<string>();
  const toWrite: [string, Float32Array][] = [];
  for (const [ckptName, t] of tensors) {
    const name = rename.get(ckptName)!;
    const p = params.get(name);
    if (!p) {
      if (matches(name, opts.allowUnexpected) || matches(ckptName, opts.allowUnexpected)) report.ignored.push(ckptName);
      else unexpected.push(ckptName);
      continue;
    }
    if (!FLOAT_DTYPES.has(t.dtype)) {
      throw new Error(`${source}: tensor "${ckptName}" has dtype ${t.dtype}, expected a float type (F32, F16, BF16 or F64)`);
    }
    const sameShape = t.shape.length === p.shape.length && t.shape.every((d, i) => d === p.shape[i]);
    if (!sameShape) {
      if (opts.ignoreMismatchedSizes) {
        report.mismatched.push({ name: ckptName, checkpoint: t.shape, model: p.shape });
        continue;
      }
      throw new Error(
        `${source}: tensor "${ckptName}" has shape [${t.shape}], but the model built from the config expects [${p.shape}]` +
          ' (pass ignoreMismatchedSizes to re-initialise it instead)',
      );
    }
    toWrite.push([name, t.data instanceof Float32Array ? t.data : Float32Array.from(t.data as ArrayLike<number>)]);
    loaded.add(name);
  }
  const missing = [...modelNames].filter((n) => !loaded.has(n) && !report.mismatched.some((m) => rename.get(m.name) === n));
  const allowedMissing = missing.filter((n) => matches(n, opts.allowMissing));
  const badMissing = missing.filter((n) => !matches(n, opts.allowMissing));
  if (unexpected.length || badMissing.length) {
    const parts: string[] = [];
    if (badMissing.length) parts.push(`missing tensors: ${badMissing.join(', ')}`);
    if (unexpected.length) parts.push(`unexpected tensors: ${unexpected.join(', ')}`);
    throw new Error(`${source} does not match the model: ${parts.join('; ')}`);
  }
  for (const [name, data] of toWrite) model.setParameter(name, data);
  report.newlyInitialized = [...allowedMissing, ...report.mismatched.map((m) => rename.get(m.name)!)];
  if (opts.warn !== false) {
    if (report.newlyInitialized.length) {
      console.warn(`Some weights of the model were not initialized from ${source} and are newly initialized: ` +
        `[${report.newlyInitialized.join(', ')}]. You should probably TRAIN this model on a down-stream task.`);
    }
    if (report.ignored.length) console.warn(`Some weights of ${source} were not used: [${report.ignored.join(', ')}]`);
  }
  return report;
}

/** Reads every parameter back as float32, by HF name. */
export async function stateDict(model: Module): Promise<Map<string, { dtype: 'F32'; shape: number[]; data: Float32Array }>> {
  const out = new Map<string, { dtype: 'F32'; shape: number[]; data: Float32Array }>();
  for (const [name, p] of model.namedParameters()) out.set(name, { dtype: 'F32', shape: [...p.shape], data: await p.toArray() });
  return out;
}
