// WGSL source handling: `#include` expansion with a line map for error messages, the features a
// shader enables, and the layout of its uniform structs (so dispatches fill uniforms by field name).

/**
 * A WGSL module: its name (the file name without `.wgsl`, used in errors, profiles and the pipeline
 * cache), its code, and the files its `#include` lines may pull in, by name.
 */
export interface Shader {
  name: string;
  code: string;
  library?: Readonly<Record<string, string>>;
}

/** A shader after `#include` expansion: `origin[i]` names the file and line of code line i + 1. */
export interface ExpandedShader {
  name: string;
  code: string;
  origin: string[];
}

export interface UniformField {
  name: string;
  type: 'u32' | 'i32' | 'f32';
  /** byte offset in the struct */
  offset: number;
}

export interface UniformStruct {
  name: string;
  fields: UniformField[];
}

/**
 * Replaces each `#include "other.wgsl"` line with that file's code (WGSL has no imports; an included
 * file must have no `enable` directive), recursively.
 */
export function expandIncludes(name: string, code: string, library: Readonly<Record<string, string>>): ExpandedShader {
  const lines: string[] = [], origin: string[] = [];
  const expand = (file: string, text: string, stack: string[]) => {
    text.split('\n').forEach((line, i) => {
      const include = /^#include "(\w+)\.wgsl"\s*$/.exec(line)?.[1];
      if (include === undefined) {
        lines.push(line);
        origin.push(`shaders/${file}.wgsl:${i + 1}`);
        return;
      }
      if (library[include] === undefined) throw new Error(`shaders/${file}.wgsl:${i + 1}: no shaders/${include}.wgsl to include`);
      if (stack.includes(include)) throw new Error(`shaders/${file}.wgsl:${i + 1}: ${include}.wgsl includes itself`);
      expand(include, library[include], [...stack, include]);
    });
  };
  expand(name, code, [name]);
  return { name, code: lines.join('\n'), origin };
}

/** The WebGPU features a shader's `enable` directives need (WGSL `f16` is the feature 'shader-f16'). */
export function featuresNeeded(code: string): string[] {
  const names = [...code.matchAll(/^\s*enable\s+([\w\s,]+);/gm)].flatMap((m) => m[1].split(',').map((n) => n.trim()));
  return names.filter(Boolean).map((n) => (n === 'f16' ? 'shader-f16' : n.replace(/_/g, '-')));
}

const SCALARS = new Set(['u32', 'i32', 'f32']);

/**
 * The structs bound as `var<uniform>` in a shader. Only 4-byte scalar fields are supported, which
 * keeps the layout trivial (field i at byte 4 i) and is all the kernels need.
 */
export function uniformStructs(name: string, code: string): UniformStruct[] {
  const plain = code.replace(/\/\/[^\n]*/g, '');
  const types = new Set([...plain.matchAll(/var<uniform>\s+\w+\s*:\s*(\w+)\s*;/g)].map((m) => m[1]));
  const out: UniformStruct[] = [];
  for (const type of types) {
    const body = new RegExp(`struct\\s+${type}\\s*\\{([^}]*)\\}`).exec(plain)?.[1];
    if (body === undefined) throw new Error(`shaders/${name}.wgsl: uniform struct ${type} not found`);
    const fields = body.split(',').map((f) => f.trim()).filter(Boolean).map((f, i) => {
      const m = /^(\w+)\s*:\s*(\w+)$/.exec(f);
      if (!m || !SCALARS.has(m[2])) {
        throw new Error(`shaders/${name}.wgsl: uniform struct ${type} field "${f}": only u32, i32 and f32 fields are supported`);
      }
      return { name: m[1], type: m[2] as UniformField['type'], offset: 4 * i };
    });
    out.push({ name: type, fields });
  }
  return out;
}

/**
 * The uniform struct whose fields include every given name (fields not given are 0). Several structs
 * in one file are told apart by their field names.
 */
export function matchUniformStruct(label: string, structs: readonly UniformStruct[], given: readonly string[]): UniformStruct {
  const fits = structs.filter((s) => given.every((g) => s.fields.some((f) => f.name === g)));
  if (fits.length === 1) return fits[0];
  const list = structs.map((s) => `${s.name} { ${s.fields.map((f) => f.name).join(', ')} }`).join('; ') || 'none';
  if (fits.length === 0) throw new Error(`${label}: uniforms { ${given.join(', ')} } match no uniform struct of the shader (it has: ${list})`);
  throw new Error(`${label}: uniforms { ${given.join(', ')} } match several uniform structs (${fits.map((s) => s.name).join(', ')})`);
}

const constantCache = new WeakMap<Shader, Map<string, number>>();

/**
 * The value of a shader's integer `const NAME = 8u;` (or an `override`'s default), so that TypeScript
 * reads a tile size from the kernel that defines it instead of keeping a copy by hand. Only literal
 * values; an expression is an error naming the constant.
 */
export function shaderConstant(shader: Shader, name: string): number {
  let cache = constantCache.get(shader);
  if (!cache) constantCache.set(shader, (cache = new Map()));
  let value = cache.get(name);
  if (value === undefined) {
    const m = new RegExp(`^\\s*(?:const|override)\\s+${name}\\s*(?::\\s*\\w+)?\\s*=\\s*([^;]+);`, 'm').exec(shader.code);
    if (!m) throw new Error(`shaders/${shader.name}.wgsl has no const or override ${name}`);
    const literal = /^(\d+)[ui]?$/.exec(m[1].trim());
    if (!literal) throw new Error(`shaders/${shader.name}.wgsl: ${name} = ${m[1].trim()} is not an integer literal`);
    value = Number(literal[1]);
    cache.set(name, value);
  }
  return value;
}
