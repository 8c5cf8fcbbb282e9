// safetensors reader/writer (https://github.com/huggingface/safetensors), browser-safe: works on
// Uint8Array/ArrayBuffer only (no fs, no Buffer).
//
// Layout: u64 little-endian header length N, N bytes of UTF-8 JSON
//   {"__metadata__": {str: str}?, name: {"dtype", "shape", "data_offsets": [begin, end)}, ...}
// then the data buffer, which the tensors must cover exactly (no holes, no overlaps, no trailing bytes).
// Offsets are relative to the start of the data buffer; data is little-endian, C order.

/** Every dtype the format defines. */
export type SafeDtype =
  | 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL'
  | 'U16' | 'U32' | 'U64' | 'F8_E5M2' | 'F8_E4M3';

/** The dtypes of parsed data in memory: floats become F32, small ints I32, I64 stays exact. */
export type MemoryDtype = 'F32' | 'I64' | 'I32' | 'U8' | 'BOOL';
export type TensorData = Float32Array | Int32Array | BigInt64Array | Uint8Array;

export interface SafeTensor {
  /** dtype of `data` (after conversion) */
  dtype: MemoryDtype;
  /** dtype stored in the file, e.g. 'F16' for a tensor converted to Float32Array */
  sourceDtype: SafeDtype;
  shape: number[];
  data: TensorData;
}

/** Dtypes serializeSafetensors can write, with the array types it accepts for each. */
export type WritableDtype = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';
export interface TensorToWrite {
  dtype: WritableDtype;
  shape: readonly number[];
  /** F32/F16/BF16: Float32Array (F64 also takes Float64Array); I64: BigInt64Array;
   *  I32/I16/I8: Int32Array (range-checked); U8/BOOL: Uint8Array. */
  data: TensorData | Float64Array;
}

export interface ParsedSafetensors {
  tensors: Map<string, SafeTensor>;
  metadata: Record<string, string>;
}

const ELEMENT_SIZE: Record<SafeDtype, number> = {
  F64: 8, I64: 8, U64: 8, F32: 4, I32: 4, U32: 4, F16: 2, BF16: 2, I16: 2, U16: 2,
  I8: 1, U8: 1, BOOL: 1, F8_E5M2: 1, F8_E4M3: 1,
};
const UNSUPPORTED = new Set<SafeDtype>(['U32', 'U64', 'F8_E5M2', 'F8_E4M3']);

/** Same limit as the reference implementation (MAX_HEADER_SIZE). */
const MAX_HEADER_BYTES = 100_000_000;
const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

export function elementSize(dtype: SafeDtype): number {
  return ELEMENT_SIZE[dtype];
}

// ----------------------------------------------------------------------------------------------
// parsing

export function parseSafetensors(input: Uint8Array | ArrayBuffer, source: string): ParsedSafetensors {
  // a plain Uint8Array view: Node's Buffer#slice would not copy
  const bytes = input instanceof Uint8Array ? new Uint8Array(input.buffer, input.byteOffset, input.byteLength) : new Uint8Array(input);
  const fail = (msg: string): never => { throw new Error(`${source}: ${msg}`); };

  if (bytes.byteLength < 8) fail(`not a safetensors file: ${bytes.byteLength} bytes, shorter than the 8-byte header length`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen64 = view.getBigUint64(0, true);
  if (headerLen64 > BigInt(MAX_HEADER_BYTES)) {
    fail(`header length ${headerLen64} is absurd (limit ${MAX_HEADER_BYTES} bytes); not a safetensors file or corrupt`);
  }
  const headerLen = Number(headerLen64);
  if (8 + headerLen > bytes.byteLength) {
    fail(`header length ${headerLen} runs past the end of the file (${bytes.byteLength} bytes); file truncated or not safetensors`);
  }

  let headerText: string;
  try {
    headerText = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + headerLen));
  } catch {
    return fail('header is not valid UTF-8');
  }
  let header: unknown;
  try {
    header = JSON.parse(headerText);
  } catch (e) {
    return fail(`header is not valid JSON (${(e as Error).message})`);
  }
  if (!isPlainObject(header)) fail(`header must be a JSON object, got ${describe(header)}`);
  const entries = header as Record<string, unknown>;

  const metadata = parseMetadata(entries.__metadata__, fail);
  const dataStart = 8 + headerLen;
  const dataLength = bytes.byteLength - dataStart;

  interface Span { name: string; begin: number; end: number; dtype: SafeDtype; shape: number[] }
  const spans: Span[] = [];
  for (const [name, info] of Object.entries(entries)) {
    if (name === '__metadata__') continue;
    const failT = (msg: string): never => fail(`tensor "${name}": ${msg}`);
    if (!isPlainObject(info)) failT(`entry must be an object with dtype, shape and data_offsets, got ${describe(info)}`);
    const { dtype, shape, data_offsets: offsets } = info as Record<string, unknown>;

    if (typeof dtype !== 'string') failT(`missing or invalid "dtype" (expected a string such as "F32"), got ${describe(dtype)}`);
    if (!Object.hasOwn(ELEMENT_SIZE, dtype as string)) failT(`unknown dtype "${dtype}"`);
    if (UNSUPPORTED.has(dtype as SafeDtype)) failT(`dtype ${dtype} is not supported by this reader`);

    if (!Array.isArray(shape) || !shape.every(isNonNegativeInt)) {
      failT(`missing or invalid "shape" (expected an array of non-negative integers), got ${describe(shape)}`);
    }
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isNonNegativeInt)) {
      failT(`missing or invalid "data_offsets" (expected [begin, end] non-negative integers), got ${describe(offsets)}`);
    }
    const [begin, end] = offsets as number[];
    if (end < begin) failT(`data_offsets end ${end} is before begin ${begin}`);

    const count = product(shape as number[]);
    const size = ELEMENT_SIZE[dtype as SafeDtype];
    if (!Number.isSafeInteger(count * size)) failT(`shape ${JSON.stringify(shape)} is too large`);
    if (end - begin !== count * size) {
      failT(`byte length ${end - begin} (data_offsets [${begin}, ${end}]) != ${count} elements of shape ` +
        `${JSON.stringify(shape)} x ${size} bytes (${dtype}) = ${count * size}`);
    }
    if (end > dataLength) failT(`data_offsets [${begin}, ${end}] lie outside the data buffer of ${dataLength} bytes`);
    spans.push({ name, begin, end, dtype: dtype as SafeDtype, shape: (shape as number[]).slice() });
  }

  checkFullCoverage(spans, dataLength, fail);

  const tensors = new Map<string, SafeTensor>();
  for (const s of spans) {
    const raw = bytes.subarray(dataStart + s.begin, dataStart + s.end);
    tensors.set(s.name, { ...decode(raw, s.dtype), sourceDtype: s.dtype, shape: s.shape });
  }
  return { tensors, metadata };
}

function parseMetadata(meta: unknown, fail: (msg: string) => never): Record<string, string> {
  if (meta === undefined || meta === null) return {};
  if (!isPlainObject(meta)) fail(`"__metadata__" must be an object of strings, got ${describe(meta)}`);
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(meta as Record<string, unknown>)) {
    if (typeof v !== 'string') fail(`"__metadata__" value for "${k}" must be a string, got ${describe(v)}`);
    out[k] = v as string;
  }
  return out;
}

/** The spec requires the tensors to tile the data buffer exactly: no overlap, no hole, nothing after. */
function checkFullCoverage(
  spans: { name: string; begin: number; end: number }[], dataLength: number, fail: (msg: string) => never,
): void {
  const sorted = [...spans].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let pos = 0;
  let previous: string | null = null;
  for (const s of sorted) {
    if (s.begin < pos) {
      fail(`tensor "${s.name}" (data_offsets [${s.begin}, ${s.end}]) overlaps tensor "${previous}" which ends at ${pos}`);
    }
    if (s.begin > pos) {
      const after = previous === null ? 'the start of the data buffer' : `tensor "${previous}"`;
      fail(`hole of ${s.begin - pos} bytes between ${after} (ends at ${pos}) and tensor "${s.name}" ` +
        `(begins at ${s.begin}); the data buffer must be fully covered`);
    }
    pos = s.end;
    previous = s.name;
  }
  if (pos !== dataLength) {
    fail(`${dataLength - pos} trailing bytes after the last tensor${previous ? ` "${previous}"` : ''} ` +
      `(tensors cover ${pos} of ${dataLength} data bytes); the data buffer must be fully covered`);
  }
}

/** Copies raw little-endian bytes into a fresh, aligned typed array, converting where needed. */
function decode(raw: Uint8Array, dtype: SafeDtype): { dtype: MemoryDtype; data: TensorData } {
  const copy = raw.slice(); // own, aligned ArrayBuffer; the source offset may be unaligned
  const size = ELEMENT_SIZE[dtype];
  if (!LITTLE_ENDIAN_HOST && size > 1) swapBytes(copy, size);
  const n = copy.byteLength / size;
  switch (dtype) {
    case 'F32': return { dtype: 'F32', data: new Float32Array(copy.buffer) };
    case 'F64': return { dtype: 'F32', data: Float32Array.from(new Float64Array(copy.buffer)) }; // round to nearest
    case 'F16': return { dtype: 'F32', data: f16ToF32(new Uint16Array(copy.buffer)) };
    case 'BF16': {
      const bits = new Uint16Array(copy.buffer);
      const out = new Uint32Array(n);
      for (let i = 0; i < n; i++) out[i] = bits[i] << 16; // bf16 is the top half of an f32
      return { dtype: 'F32', data: new Float32Array(out.buffer) };
    }
    case 'I64': return { dtype: 'I64', data: new BigInt64Array(copy.buffer) };
    case 'I32': return { dtype: 'I32', data: new Int32Array(copy.buffer) };
    case 'I16': return { dtype: 'I32', data: Int32Array.from(new Int16Array(copy.buffer)) };
    case 'U16': return { dtype: 'I32', data: Int32Array.from(new Uint16Array(copy.buffer)) };
    case 'I8': return { dtype: 'I32', data: Int32Array.from(new Int8Array(copy.buffer)) };
    case 'U8': return { dtype: 'U8', data: copy };
    case 'BOOL': return { dtype: 'BOOL', data: copy };
    default: throw new Error(`unsupported dtype ${dtype}`); // filtered out by the caller
  }
}

/** IEEE half -> single, bit-exact (subnormals normalised, inf, NaN payload kept). */
function f16ToF32(half: Uint16Array): Float32Array {
  const out = new Uint32Array(half.length);
  for (let i = 0; i < half.length; i++) {
    const h = half[i];
    const sign = (h & 0x8000) << 16;
    let exp = (h >> 10) & 0x1f;
    let mant = h & 0x3ff;
    if (exp === 0x1f) {
      out[i] = sign | 0x7f800000 | (mant << 13);
    } else if (exp !== 0) {
      out[i] = sign | ((exp + 112) << 23) | (mant << 13);
    } else if (mant === 0) {
      out[i] = sign;
    } else {
      // subnormal: shift the mantissa up until its implicit bit appears
      exp = 1;
      while ((mant & 0x400) === 0) { mant <<= 1; exp--; }
      out[i] = sign | ((exp + 112) << 23) | ((mant & 0x3ff) << 13);
    }
  }
  return new Float32Array(out.buffer);
}

/** Numbers of any tensor (I64 converted exactly; throws beyond 2^53 rather than rounding). */
export function toNumbers(t: { data: TensorData | Float64Array }, name = 'tensor'): number[] {
  if (t.data instanceof BigInt64Array) {
    return Array.from(t.data, (v, i) => {
      const x = Number(v);
      if (!Number.isSafeInteger(x)) throw new Error(`${name}[${i}] = ${v} cannot be represented exactly as a number`);
      return x;
    });
  }
  return Array.from(t.data as ArrayLike<number>);
}

// ----------------------------------------------------------------------------------------------
// serialization

/**
 * Writes tensors in the layout of the reference library (and the golden files): header JSON without
 * spaces, "__metadata__" first, padded with spaces so that 8 + N is a multiple of 8; tensors sorted by
 * (element size descending, name) so every tensor's absolute offset is a multiple of its element size.
 */
export function serializeSafetensors(
  tensors: Map<string, TensorToWrite> | Record<string, TensorToWrite>,
  metadata?: Record<string, string>,
): Uint8Array {
  const entries = tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors);
  const items = entries.map(([name, t]) => ({ name, t, size: checkWritable(name, t) }));
  items.sort((a, b) => b.size - a.size || compareCodePoints(a.name, b.name));

  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length > 0) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') throw new Error(`safetensors metadata "${k}" must be a string, got ${describe(v)}`);
    }
    header.__metadata__ = metadata;
  }
  let offset = 0;
  for (const { name, t, size } of items) {
    const byteLength = product(t.shape) * size;
    header[name] = { dtype: t.dtype, shape: [...t.shape], data_offsets: [offset, offset + byteLength] };
    offset += byteLength;
  }

  const json = new TextEncoder().encode(asciiJson(header));
  const headerLen = json.byteLength + ((8 - ((8 + json.byteLength) % 8)) % 8);
  const out = new Uint8Array(8 + headerLen + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLen), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.byteLength, 8 + headerLen);

  let pos = 8 + headerLen;
  for (const { t, size } of items) {
    let encoded = encode(t); // may be a view of the caller's data: copy before swapping
    if (!LITTLE_ENDIAN_HOST && size > 1) swapBytes(encoded = encoded.slice(), size);
    out.set(encoded, pos);
    pos += encoded.byteLength;
  }
  return out;
}

const ACCEPTED_ARRAYS: Record<WritableDtype, string> = {
  F32: 'Float32Array', F16: 'Float32Array', BF16: 'Float32Array', F64: 'Float32Array or Float64Array',
  I64: 'BigInt64Array', I32: 'Int32Array', I16: 'Int32Array', I8: 'Int32Array', U8: 'Uint8Array', BOOL: 'Uint8Array',
};

/** Validates one tensor to write and returns its element size. */
function checkWritable(name: string, t: TensorToWrite): number {
  const fail = (msg: string): never => { throw new Error(`safetensors: tensor "${name}": ${msg}`); };
  if (name === '__metadata__' || name.length === 0) fail('invalid tensor name');
  if (!t || typeof t !== 'object') fail(`expected {dtype, shape, data}, got ${describe(t)}`);
  if (!Object.hasOwn(ACCEPTED_ARRAYS, t.dtype)) fail(`cannot write dtype ${describe(t.dtype)}`);
  if (!Array.isArray(t.shape) || !t.shape.every(isNonNegativeInt)) {
    fail(`shape must be an array of non-negative integers, got ${describe(t.shape)}`);
  }
  const d = t.data;
  const ok =
    t.dtype === 'I64' ? d instanceof BigInt64Array
    : t.dtype === 'U8' || t.dtype === 'BOOL' ? d instanceof Uint8Array
    : t.dtype === 'I32' || t.dtype === 'I16' || t.dtype === 'I8' ? d instanceof Int32Array
    : t.dtype === 'F64' ? d instanceof Float32Array || d instanceof Float64Array
    : d instanceof Float32Array;
  if (!ok) fail(`dtype ${t.dtype} needs data as ${ACCEPTED_ARRAYS[t.dtype]}, got ${describe(d)}`);
  const count = product(t.shape);
  if (d.length !== count) fail(`data has ${d.length} elements but shape ${JSON.stringify(t.shape)} needs ${count}`);
  if (t.dtype === 'I16' || t.dtype === 'I8') {
    const [lo, hi] = t.dtype === 'I16' ? [-32768, 32767] : [-128, 127];
    const bad = (d as Int32Array).findIndex((v) => v < lo || v > hi);
    if (bad >= 0) fail(`value ${d[bad]} at index ${bad} does not fit in ${t.dtype}`);
  }
  return ELEMENT_SIZE[t.dtype];
}

/** Little-endian bytes of one tensor in its file dtype (host order; swapped by the caller if needed). */
function encode(t: TensorToWrite): Uint8Array {
  const d = t.data;
  const bytesOf = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  switch (t.dtype) {
    case 'F64': return bytesOf(d instanceof Float64Array ? d : Float64Array.from(d as Float32Array));
    case 'F16': return bytesOf(f32ToF16(d as Float32Array));
    case 'BF16': return bytesOf(f32ToBf16(d as Float32Array));
    case 'I16': return bytesOf(Int16Array.from(d as Int32Array));
    case 'I8': return bytesOf(Int8Array.from(d as Int32Array));
    default: return bytesOf(d);
  }
}

/** single -> half, round to nearest even; overflow -> inf, NaN stays NaN. */
function f32ToF16(values: Float32Array): Uint16Array {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const x = bits[i];
    const sign = (x >>> 16) & 0x8000;
    const exp = (x >>> 23) & 0xff;
    let mant = x & 0x7fffff;
    if (exp === 0xff) { out[i] = sign | 0x7c00 | (mant ? 0x200 | (mant >>> 13) : 0); continue; }
    const e = exp - 112; // rebias 127 -> 15
    if (e >= 31) { out[i] = sign | 0x7c00; continue; }
    let shift: number;
    let half: number;
    if (e <= 0) {
      // half subnormal: value / 2^-24, with the implicit bit made explicit
      if (e < -10) { out[i] = sign; continue; }
      mant |= 0x800000;
      shift = 14 - e;
      half = mant >>> shift;
    } else {
      shift = 13;
      half = (e << 10) | (mant >>> 13);
    }
    const rest = mant & ((1 << shift) - 1);
    const midway = 1 << (shift - 1);
    if (rest > midway || (rest === midway && (half & 1))) half++; // a carry into the exponent is correct
    out[i] = sign | half;
  }
  return out;
}

/** single -> bfloat16, round to nearest even; NaN stays (quiet) NaN. */
function f32ToBf16(values: Float32Array): Uint16Array {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const x = bits[i];
    if ((x & 0x7fffffff) > 0x7f800000) { out[i] = (x >>> 16) | 0x40; continue; }
    out[i] = (x + 0x7fff + ((x >>> 16) & 1)) >>> 16;
  }
  return out;
}

// ----------------------------------------------------------------------------------------------
// helpers

function swapBytes(bytes: Uint8Array, size: number): void {
  for (let i = 0; i < bytes.length; i += size) bytes.subarray(i, i + size).reverse();
}

function product(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function isNonNegativeInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Python's sort order for str (code points), which differs from JS `<` only beyond the BMP. */
function compareCodePoints(a: string, b: string): number {
  const ca = [...a], cb = [...b];
  for (let i = 0; i < Math.min(ca.length, cb.length); i++) {
    const d = ca[i].codePointAt(0)! - cb[i].codePointAt(0)!;
    if (d !== 0) return d;
  }
  return ca.length - cb.length;
}

/** JSON.stringify with non-ASCII escaped, as Python's json.dumps does: the golden files are byte-identical. */
function asciiJson(value: unknown): string {
  return JSON.stringify(value).replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (ArrayBuffer.isView(v)) return v.constructor.name;
  if (Array.isArray(v)) return `array ${truncate(safeStringify(v))}`;
  if (typeof v === 'object') return `object ${truncate(safeStringify(v))}`;
  if (typeof v === 'string') return `string ${truncate(JSON.stringify(v))}`;
  return `${typeof v} ${String(v)}`;
}

function safeStringify(v: unknown): string {
  try { return JSON.stringify(v); } catch { return String(v); }
}

function truncate(s: string): string {
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}
