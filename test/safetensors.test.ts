import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { readFileSync, mkdtempSync, readdirSync, mkdirSync, writeFileSync, chmodSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  parseSafetensors, serializeSafetensors, toNumbers, elementSize, type TensorToWrite,
} from '../src/io/safetensors.ts';
import { readFileBytes, writeFileAtomic, readCheckpointDir, writeCheckpointDir } from '../src/io/files-node.ts';
import { SHARED, messageHas, rejects } from './helpers.ts';

const GOLDEN = join(SHARED, 'golden');

/** A safetensors file from a raw header object and data bytes (no validation, for malformed cases). */
function rawFile(header: unknown, data: Uint8Array | number = 0, headerText?: string): Uint8Array {
  const json = new TextEncoder().encode(headerText ?? JSON.stringify(header));
  const body = typeof data === 'number' ? new Uint8Array(data) : data;
  const out = new Uint8Array(8 + json.length + body.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(body, 8 + json.length);
  return out;
}

// ------------------------------------------------------------------------------------------------
// golden files

for (const file of ['model.safetensors', 'io.safetensors']) {
  test(`vit-micro/${file}: matches read_safetensors.mjs and re-serializes byte for byte`, () => {
    const path = join(GOLDEN, 'vit-micro', file);
    const bytes = readFileSync(path);
    const ref = JSON.parse(execFileSync(process.execPath, [join(GOLDEN, 'read_safetensors.mjs'), path], { encoding: 'utf8' }))[path];
    const { tensors, metadata } = parseSafetensors(bytes, path);
    assert.equal(metadata, ref.meta);
    assert.equal([...tensors.keys()].sort(), Object.keys(ref.tensors).sort());
    for (const [name, t] of tensors) {
      const r = ref.tensors[name];
      assert.is(t.sourceDtype, r.dtype, name);
      assert.is(t.dtype, r.dtype, name);
      assert.equal(t.shape, r.shape, name);
      let sum = 0;
      for (const v of t.data) sum += Number(v);
      assert.is(sum, r.sum, `${name} sum`); // same float32 values summed in the same order: identical
      assert.is(Number(t.data[0]), r.first, `${name} first`);
    }
    assert.ok(Buffer.from(serializeSafetensors(tensors, metadata)).equals(bytes), 'byte-exact round trip');
  });
}

test('vit-micro io.safetensors: known shapes and int64 labels', () => {
  const path = join(GOLDEN, 'vit-micro', 'io.safetensors');
  const { tensors, metadata } = parseSafetensors(new Uint8Array(readFileSync(path)).buffer, path);
  assert.equal(tensors.get('pixel_values')!.shape, [3, 3, 32, 32]);
  assert.equal(tensors.get('logits')!.shape, [3, 2]);
  assert.equal(tensors.get('attentions.1')!.shape, [3, 4, 17, 17]);
  const labels = tensors.get('labels')!;
  assert.is(labels.dtype, 'I64');
  assert.ok(labels.data instanceof BigInt64Array);
  assert.ok(toNumbers(labels).every((l) => l === 0 || l === 1));
  assert.is(metadata.case, 'vit-micro');
  assert.is(metadata.seed, '1001');
});

// ------------------------------------------------------------------------------------------------
// round trips

test('round trip of every writable dtype, scalar and empty tensors, unicode names, metadata', () => {
  const input: Record<string, TensorToWrite> = {
    'w.f32': { dtype: 'F32', shape: [2, 3], data: new Float32Array([1, -2, 3.5, 1e-30, -0, 7]) },
    'w.f64': { dtype: 'F64', shape: [3], data: new Float64Array([0.5, -1.25, 2 ** -20]) },
    'w.f16': { dtype: 'F16', shape: [4], data: new Float32Array([1, -2.5, 65504, 2 ** -24]) },
    'w.bf16': { dtype: 'BF16', shape: [2, 2], data: new Float32Array([1, -2.5, 3 * 2 ** 100, 2 ** -133]) },
    labels: { dtype: 'I64', shape: [3], data: new BigInt64Array([0n, -5n, 2n ** 62n]) },
    'i.32': { dtype: 'I32', shape: [1, 2], data: new Int32Array([-2147483648, 2147483647]) },
    'i.16': { dtype: 'I16', shape: [2], data: new Int32Array([-32768, 32767]) },
    'i.8': { dtype: 'I8', shape: [3], data: new Int32Array([-128, 0, 127]) },
    bytes: { dtype: 'U8', shape: [5], data: new Uint8Array([0, 1, 2, 254, 255]) },
    mask: { dtype: 'BOOL', shape: [2], data: new Uint8Array([1, 0]) },
    scalar: { dtype: 'F32', shape: [], data: new Float32Array([42]) },
    empty: { dtype: 'F32', shape: [0, 3], data: new Float32Array(0) },
    'gewicht.ä→😺': { dtype: 'F32', shape: [1], data: new Float32Array([9]) },
  };
  const bytes = serializeSafetensors(input, { format: 'pt', note: 'ü' });
  const headerLen = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  assert.is((8 + headerLen) % 8, 0, 'header padded to 8');
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLen)));
  const names = Object.keys(header).filter((k) => k !== '__metadata__');
  const order = [...names].sort((a, b) => elementSize(header[b].dtype) - elementSize(header[a].dtype) || (a < b ? -1 : 1));
  assert.equal(names, order, 'sorted by (element size desc, name)');
  for (const n of names) assert.is((8 + headerLen + header[n].data_offsets[0]) % elementSize(header[n].dtype), 0, `${n} aligned`);

  const { tensors, metadata } = parseSafetensors(bytes, 'roundtrip');
  assert.equal(metadata, { format: 'pt', note: 'ü' });
  assert.is(tensors.size, Object.keys(input).length);
  for (const [name, t] of Object.entries(input)) {
    const got = tensors.get(name)!;
    assert.equal(got.shape, [...t.shape], name);
    assert.is(got.sourceDtype, t.dtype, name);
    assert.equal(Array.from(got.data as ArrayLike<unknown>), Array.from(t.data as ArrayLike<unknown>), name);
  }
  assert.is(tensors.get('w.f16')!.dtype, 'F32');
  assert.is(tensors.get('i.16')!.dtype, 'I32');
  assert.ok(tensors.get('labels')!.data instanceof BigInt64Array);
  assert.ok(Object.is(tensors.get('w.f32')!.data[4], -0));
  // a parsed map (F32 data) serializes again and parses to the same values
  const again = parseSafetensors(serializeSafetensors(tensors, metadata), 'again');
  assert.equal(Array.from(again.tensors.get('w.f16')!.data as Float32Array), [1, -2.5, 65504, 2 ** -24]);
  assert.is(again.tensors.get('w.f16')!.sourceDtype, 'F32');
});

test('Map input, Buffer / subarray / ArrayBuffer inputs, parsed data owns its memory', () => {
  const data = new Float32Array([1, 2, 3]);
  const bytes = serializeSafetensors(new Map([['x', { dtype: 'F32' as const, shape: [3], data }]]));
  const shifted = new Uint8Array(bytes.length + 3);
  shifted.set(bytes, 3);
  for (const input of [bytes, Buffer.from(bytes), shifted.subarray(3), bytes.slice().buffer]) {
    const x = parseSafetensors(input, 'in').tensors.get('x')!;
    assert.equal(Array.from(x.data as Float32Array), [1, 2, 3]);
    assert.is((x.data as Float32Array).byteOffset, 0);
  }
  const parsed = parseSafetensors(bytes, 'in').tensors.get('x')!.data as Float32Array;
  parsed[0] = 100;
  assert.is(parseSafetensors(bytes, 'in').tensors.get('x')!.data[0], 1, 'not a view of the input');
});

test('unaligned offsets are copied into aligned arrays', () => {
  // 3 data bytes of U8 first, so the F32 and F64 tensors start at odd offsets; odd header length too
  const f32 = new Float32Array([1.5, -2]);
  const f64 = new Float64Array([Math.PI]);
  const body = new Uint8Array(3 + 8 + 8);
  body.set([7, 8, 9], 0);
  body.set(new Uint8Array(f32.buffer), 3);
  body.set(new Uint8Array(f64.buffer), 11);
  const file = rawFile({
    a: { dtype: 'U8', shape: [3], data_offsets: [0, 3] },
    b: { dtype: 'F32', shape: [2], data_offsets: [3, 11] },
    c: { dtype: 'F64', shape: [1], data_offsets: [11, 19] },
  }, body, undefined);
  const { tensors } = parseSafetensors(file, 'unaligned');
  assert.equal(Array.from(tensors.get('a')!.data as Uint8Array), [7, 8, 9]);
  assert.equal(Array.from(tensors.get('b')!.data as Float32Array), [1.5, -2]);
  assert.equal(Array.from(tensors.get('c')!.data as Float32Array), [Math.fround(Math.PI)]);
  assert.is(tensors.get('c')!.sourceDtype, 'F64');
});

// ------------------------------------------------------------------------------------------------
// float conversions

function halfFile(dtype: 'F16' | 'BF16', bits: number[]): Uint8Array {
  const body = new Uint8Array(new Uint16Array(bits).buffer);
  return rawFile({ t: { dtype, shape: [bits.length], data_offsets: [0, body.length] } }, body);
}

test('F16 -> F32 exact: 1, -2.5, 65504, subnormals, -0, inf, nan', () => {
  const got = parseSafetensors(halfFile('F16', [0x3c00, 0xc100, 0x7bff, 0x0001, 0x03ff, 0x8000, 0x7c00, 0xfc00, 0x7e00, 0x0400]), 'h')
    .tensors.get('t')!;
  assert.is(got.dtype, 'F32');
  assert.is(got.sourceDtype, 'F16');
  const v = Array.from(got.data as Float32Array);
  assert.equal(v.slice(0, 5), [1, -2.5, 65504, 2 ** -24, 1023 * 2 ** -24]);
  assert.ok(Object.is(v[5], -0));
  assert.equal(v.slice(6, 8), [Infinity, -Infinity]);
  assert.ok(Number.isNaN(v[8]));
  assert.is(v[9], 2 ** -14, 'smallest normal');
});

test('F16: all 65536 bit patterns decode exactly and re-encode to the same bits', () => {
  const bits = Array.from({ length: 65536 }, (_, i) => i);
  const decoded = parseSafetensors(halfFile('F16', bits), 'all').tensors.get('t')!.data as Float32Array;
  const reference = (h: number) => {
    const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 0x1f, m = h & 0x3ff;
    if (e === 0) return s * m * 2 ** -24;
    if (e === 31) return m ? NaN : s * Infinity;
    return s * (1 + m / 1024) * 2 ** (e - 15);
  };
  for (let h = 0; h < 65536; h++) {
    const want = reference(h);
    if (!(Object.is(decoded[h], want) || (Number.isNaN(want) && Number.isNaN(decoded[h])))) {
      assert.unreachable(`0x${h.toString(16)} decoded to ${decoded[h]}, expected ${want}`);
    }
  }
  const encoded = serializeSafetensors({ t: { dtype: 'F16', shape: [65536], data: decoded } });
  const back = new Uint16Array(encoded.slice(encoded.length - 131072).buffer);
  for (let h = 0; h < 65536; h++) {
    const isNaN16 = (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0;
    if (isNaN16 ? !((back[h] & 0x7c00) === 0x7c00 && (back[h] & 0x3ff) !== 0) : back[h] !== h) {
      assert.unreachable(`0x${h.toString(16)} re-encoded to 0x${back[h].toString(16)}`);
    }
  }
});

test('BF16 -> F32 exact: 1, -2.5, max, subnormal, inf, nan', () => {
  const got = parseSafetensors(halfFile('BF16', [0x3f80, 0xc020, 0x7f7f, 0x0001, 0x7f80, 0xff80, 0x7fc0, 0x8000]), 'b')
    .tensors.get('t')!;
  assert.is(got.sourceDtype, 'BF16');
  const v = Array.from(got.data as Float32Array);
  assert.equal(v.slice(0, 6), [1, -2.5, (2 - 2 ** -7) * 2 ** 127, 2 ** -133, Infinity, -Infinity]);
  assert.ok(Number.isNaN(v[6]));
  assert.ok(Object.is(v[7], -0));
});

test('F16 / BF16 encoding rounds to nearest even, overflows to inf, keeps nan', () => {
  const f16 = [1 + 2 ** -11, 1 + 3 * 2 ** -11, 65504, 65519, 65520, 1e9, 2 ** -25, 1.5 * 2 ** -25, 2 ** -26, -Infinity, NaN, -0];
  const bf16 = [1 + 2 ** -8, 1 + 3 * 2 ** -8, 3.4e38, -Infinity, NaN, 3 * 2 ** -133];
  const bytes = serializeSafetensors({
    a: { dtype: 'F16', shape: [f16.length], data: new Float32Array(f16) },
    b: { dtype: 'BF16', shape: [bf16.length], data: new Float32Array(bf16) },
  });
  const { tensors } = parseSafetensors(bytes, 'enc');
  const a = Array.from(tensors.get('a')!.data as Float32Array);
  assert.equal(a.slice(0, 10), [1, 1 + 2 ** -9, 65504, 65504, Infinity, Infinity, 0, 2 ** -24, 0, -Infinity]);
  assert.ok(Number.isNaN(a[10]));
  assert.ok(Object.is(a[11], -0));
  const b = Array.from(tensors.get('b')!.data as Float32Array);
  assert.equal(b.slice(0, 4), [1, 1 + 2 ** -6, Infinity, -Infinity]);
  assert.ok(Number.isNaN(b[4]));
  assert.is(b[5], 3 * 2 ** -133);
});

test('F64 converts to the nearest float32 (overflow -> inf), inf and nan kept', () => {
  const body = new Uint8Array(new Float64Array([0.1, 1e40, -Infinity, NaN, 1e-50, -2.5]).buffer);
  const v = Array.from(parseSafetensors(rawFile({ d: { dtype: 'F64', shape: [2, 3], data_offsets: [0, 48] } }, body), 'f64')
    .tensors.get('d')!.data as Float32Array);
  assert.equal(v.slice(0, 3), [Math.fround(0.1), Infinity, -Infinity]);
  assert.ok(Number.isNaN(v[3]));
  assert.equal(v.slice(4), [0, -2.5]);
});

test('toNumbers: I64 exactly, refuses values beyond 2^53', () => {
  assert.equal(toNumbers({ data: new BigInt64Array([3n, -1n]) }), [3, -1]);
  assert.equal(toNumbers({ data: new Float32Array([0.5]) }), [0.5]);
  assert.throws(() => toNumbers({ data: new BigInt64Array([2n ** 60n]) }, 'labels'), messageHas('labels[0]', '1152921504606846976'));
});

// ------------------------------------------------------------------------------------------------
// malformed files: every error names the file (and the tensor where there is one)

const F = 'bad.safetensors';
const ok = (extra: Record<string, unknown> = {}) => ({ w: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, ...extra });

test('malformed: file and header framing', () => {
  assert.throws(() => parseSafetensors(new Uint8Array(5), F), messageHas(F, 'shorter than'));
  const pastEnd = new Uint8Array(16);
  new DataView(pastEnd.buffer).setBigUint64(0, 100n, true);
  assert.throws(() => parseSafetensors(pastEnd, F), messageHas(F, 'past the end'));
  const absurd = new Uint8Array(16);
  new DataView(absurd.buffer).setBigUint64(0, 2n ** 40n, true);
  assert.throws(() => parseSafetensors(absurd, F), messageHas(F, 'absurd'));
  assert.throws(() => parseSafetensors(rawFile(null, 0, '{"w": '), F), messageHas(F, 'not valid JSON'));
  const badUtf8 = rawFile(null, 0, '{"a":1}');
  badUtf8[9] = 0xff;
  assert.throws(() => parseSafetensors(badUtf8, F), messageHas(F, 'UTF-8'));
  assert.throws(() => parseSafetensors(rawFile([1, 2]), F), messageHas(F, 'must be a JSON object'));
  assert.throws(() => parseSafetensors(rawFile(7), F), messageHas(F, 'must be a JSON object'));
  assert.throws(() => parseSafetensors(rawFile({ __metadata__: { a: 1 } }), F), messageHas(F, '__metadata__', '"a"'));
  assert.throws(() => parseSafetensors(rawFile({ __metadata__: [] }), F), messageHas(F, '__metadata__'));
});

test('malformed: tensor entries (dtype, shape, data_offsets)', () => {
  const cases: [unknown, string][] = [
    [5, 'must be an object'],
    [{ shape: [2], data_offsets: [0, 8] }, '"dtype"'],
    [{ dtype: 4, shape: [2], data_offsets: [0, 8] }, '"dtype"'],
    [{ dtype: 'F33', shape: [2], data_offsets: [0, 8] }, 'unknown dtype "F33"'],
    [{ dtype: 'U64', shape: [1], data_offsets: [0, 8] }, 'U64 is not supported'],
    [{ dtype: 'F32', data_offsets: [0, 8] }, '"shape"'],
    [{ dtype: 'F32', shape: [-2], data_offsets: [0, 8] }, '"shape"'],
    [{ dtype: 'F32', shape: [1.5], data_offsets: [0, 8] }, '"shape"'],
    [{ dtype: 'F32', shape: '2', data_offsets: [0, 8] }, '"shape"'],
    [{ dtype: 'F32', shape: [2] }, '"data_offsets"'],
    [{ dtype: 'F32', shape: [2], data_offsets: [0] }, '"data_offsets"'],
    [{ dtype: 'F32', shape: [2], data_offsets: [-8, 0] }, '"data_offsets"'],
    [{ dtype: 'F32', shape: [2], data_offsets: [8, 0] }, 'end 0 is before begin 8'],
    [{ dtype: 'F32', shape: [3], data_offsets: [0, 8] }, 'byte length 8'],
    [{ dtype: 'F16', shape: [2], data_offsets: [0, 8] }, '2 bytes (F16) = 4'],
  ];
  for (const [entry, phrase] of cases) {
    assert.throws(() => parseSafetensors(rawFile({ 'enc.w': entry }, 8), F), messageHas(F, 'tensor "enc.w"', phrase));
  }
});

test('malformed: offsets outside the buffer, overlaps, holes, trailing bytes', () => {
  assert.throws(() => parseSafetensors(rawFile({ w: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, 8), F),
    messageHas(F, 'tensor "w"', 'outside the data buffer of 8 bytes'));
  assert.throws(() => parseSafetensors(rawFile(ok({ v: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }), 8), F),
    messageHas(F, 'overlaps', '"v"', '"w"'));
  assert.throws(() => parseSafetensors(rawFile(ok({ v: { dtype: 'F32', shape: [1], data_offsets: [12, 16] } }), 16), F),
    messageHas(F, 'hole of 4 bytes', '"w"', '"v"', 'fully covered'));
  assert.throws(() => parseSafetensors(rawFile({ w: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, 12), F),
    messageHas(F, 'hole of 4 bytes', 'start of the data buffer', '"w"'));
  assert.throws(() => parseSafetensors(rawFile(ok(), 11), F), messageHas(F, '3 trailing bytes', '"w"', 'fully covered'));
  assert.throws(() => parseSafetensors(rawFile({}, 4), F), messageHas(F, '4 trailing bytes'));
  // empty tensors anywhere are fine, and an empty file body with no tensors is valid
  const withEmpty = rawFile(ok({ e: { dtype: 'F32', shape: [0], data_offsets: [8, 8] }, s: { dtype: 'I64', shape: [0, 2], data_offsets: [0, 0] } }), 8);
  assert.equal(parseSafetensors(withEmpty, F).tensors.get('e')!.shape, [0]);
  assert.is(parseSafetensors(rawFile({}), F).tensors.size, 0);
});

test('serialize rejects inconsistent tensors, naming them', () => {
  const f = new Float32Array(4);
  assert.throws(() => serializeSafetensors({ w: { dtype: 'F32', shape: [3], data: f } }), messageHas('tensor "w"', '4 elements', 'needs 3'));
  assert.throws(() => serializeSafetensors({ w: { dtype: 'I64', shape: [4], data: f } }), messageHas('tensor "w"', 'BigInt64Array'));
  assert.throws(() => serializeSafetensors({ w: { dtype: 'F8' as any, shape: [4], data: f } }), messageHas('tensor "w"', 'cannot write dtype'));
  assert.throws(() => serializeSafetensors({ w: { dtype: 'F32', shape: [-4], data: f } }), messageHas('tensor "w"', 'shape'));
  assert.throws(() => serializeSafetensors({ w: { dtype: 'I8', shape: [1], data: new Int32Array([200]) } }), messageHas('tensor "w"', 'does not fit in I8'));
  assert.throws(() => serializeSafetensors({ __metadata__: { dtype: 'F32', shape: [4], data: f } }), messageHas('invalid tensor name'));
  assert.throws(() => serializeSafetensors({}, { n: 3 as any }), messageHas('metadata "n"'));
});

// ------------------------------------------------------------------------------------------------
// Node file IO

const scratch = () => mkdtempSync(join(tmpdir(), 'vitcats-io-'));

test('writeFileAtomic writes and replaces, leaving no temp file; readFileBytes names missing paths', async () => {
  const dir = scratch();
  try {
    const target = join(dir, 'a.bin');
    await writeFileAtomic(target, new Uint8Array([1, 2, 3]));
    assert.equal([...(await readFileBytes(target))], [1, 2, 3]);
    await writeFileAtomic(target, 'héllo');
    assert.is(readFileSync(target, 'utf8'), 'héllo');
    assert.equal(readdirSync(dir), ['a.bin']);
    const err = await rejects(readFileBytes(join(dir, 'missing.bin')), join(dir, 'missing.bin'));
    assert.is((err as NodeJS.ErrnoException).code, 'ENOENT');
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test('writeFileAtomic: a failed write removes the temp file and leaves the old target intact', async () => {
  const dir = scratch();
  try {
    // target is an existing directory: the rename fails after the temp file was written
    mkdirSync(join(dir, 'sub'));
    writeFileSync(join(dir, 'sub', 'keep.txt'), 'keep');
    await rejects(writeFileAtomic(join(dir, 'sub'), 'data'), join(dir, 'sub'));
    assert.equal(readdirSync(dir), ['sub']);
    assert.equal(readdirSync(join(dir, 'sub')), ['keep.txt']);

    // the write itself fails (data Node cannot write) after the temp file was created
    const target = join(dir, 'model.safetensors');
    writeFileSync(target, 'old');
    const notWritable = new Proxy(new Uint8Array(4), {}) as Uint8Array;
    await rejects(writeFileAtomic(target, notWritable), target);
    assert.is(readFileSync(target, 'utf8'), 'old');
    assert.equal(readdirSync(dir).sort(), ['model.safetensors', 'sub']);

    // read-only directory (root ignores permissions, so only checked for other users)
    if (process.getuid?.() !== 0) {
      const ro = join(dir, 'ro');
      mkdirSync(ro);
      writeFileSync(join(ro, 'f.txt'), 'old');
      chmodSync(ro, 0o555);
      try {
        await rejects(writeFileAtomic(join(ro, 'f.txt'), 'new'), join(ro, 'f.txt'));
        assert.is(readFileSync(join(ro, 'f.txt'), 'utf8'), 'old');
        assert.equal(readdirSync(ro), ['f.txt']);
      } finally { chmodSync(ro, 0o755); }
    }
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test('checkpoint dir: golden vit-micro reads, writes (byte-identical weights) and reads back', async () => {
  const golden = await readCheckpointDir(join(GOLDEN, 'vit-micro'));
  assert.is(golden.config.hidden_size, 64);
  assert.is(golden.tensors.size, 40);
  assert.ok(golden.weightsPath.endsWith('model.safetensors'));
  const dir = scratch();
  try {
    const out = join(dir, 'nested', 'ckpt');
    const weights = new Map([...golden.tensors].map(([k, t]) => [k, { dtype: 'F32' as const, shape: t.shape, data: t.data as Float32Array }]));
    await writeCheckpointDir(out, golden.config, weights, { 'README.md': '# vit-micro\n', 'extra.bin': new Uint8Array([1]) });
    assert.equal(readdirSync(out).sort(), ['README.md', 'config.json', 'extra.bin', 'model.safetensors']);
    assert.ok(readFileSync(join(out, 'model.safetensors')).equals(readFileSync(join(GOLDEN, 'vit-micro', 'model.safetensors'))));
    const back = await readCheckpointDir(out);
    assert.equal(back.config.toJSON(), golden.config.toJSON());
    for (const [k, t] of golden.tensors) assert.equal(back.tensors.get(k)!.data, t.data, k);
    // overwriting an existing checkpoint works too
    await writeCheckpointDir(out, golden.config, weights);
    assert.equal(readdirSync(out).sort(), ['README.md', 'config.json', 'extra.bin', 'model.safetensors']);
    await rejects(writeCheckpointDir(out, golden.config, weights, { '../x': 'no' }), 'invalid extra file name');
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test('checkpoint dir: errors name the missing or broken file', async () => {
  const dir = scratch();
  try {
    await rejects(readCheckpointDir(join(dir, 'nope')), join(dir, 'nope'));
    await rejects(readCheckpointDir(dir), 'config.json', dir);
    writeFileSync(join(dir, 'config.json'), '{"hidden_size": 64, "num_attention_heads": 4}');
    await rejects(readCheckpointDir(dir), 'model.safetensors', dir);
    writeFileSync(join(dir, 'pytorch_model.bin'), '');
    await rejects(readCheckpointDir(dir), 'model.safetensors', 'pytorch_model.bin');
    writeFileSync(join(dir, 'model.safetensors'), new Uint8Array(3));
    await rejects(readCheckpointDir(dir), join(dir, 'model.safetensors'), 'shorter than');
    writeFileSync(join(dir, 'config.json'), '{"hidden_size": 64,');
    await rejects(readCheckpointDir(dir), join(dir, 'config.json'), 'invalid JSON');
    writeFileSync(join(dir, 'config.json'), '{"hidden_size": "64"}');
    await rejects(readCheckpointDir(dir), join(dir, 'config.json'), 'hidden_size must be a positive integer');
    assert.ok(existsSync(join(dir, 'config.json')));
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test.run();
