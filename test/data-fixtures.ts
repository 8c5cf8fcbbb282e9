// Small image files for the data pipeline tests, written into temp folders: JPEGs through jpeg-js,
// PNGs through a minimal hand-written encoder (any colour type and bit depth, palettes, tRNS).
import jpeg from 'jpeg-js';
import { deflateSync } from 'node:zlib';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

export function tempDir(tag: string): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), `vitcats-${tag}-`));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export function writeFile(path: string, bytes: Uint8Array | string): string {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, bytes);
  return path;
}

/** A JPEG of one colour (plus an optional gradient so it is not trivially flat). */
export function solidJpeg(width: number, height: number, rgb: [number, number, number], quality = 95): Uint8Array {
  const data = new Uint8Array(width * height * 4);
  for (let i = 0; i < width * height; i++) {
    data.set(rgb, 4 * i);
    data[4 * i + 3] = 255;
  }
  return jpeg.encode({ data, width, height }, quality).data;
}

/** A JPEG with varied content (so its scan is long enough to truncate meaningfully). */
export function patternJpeg(width: number, height: number): Uint8Array {
  const data = new Uint8Array(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const o = 4 * (y * width + x);
      data[o] = (x * 7) & 255;
      data[o + 1] = (y * 5) & 255;
      data[o + 2] = ((x ^ y) * 3) & 255;
      data[o + 3] = 255;
    }
  }
  return jpeg.encode({ data, width, height }, 90).data;
}

/** Rewrite the frame size in a JPEG's SOF0 header (for the huge-dimension test). */
export function withJpegDimensions(bytes: Uint8Array, width: number, height: number): Uint8Array {
  const out = Uint8Array.from(bytes);
  for (let i = 2; i + 9 < out.length; ) {
    if (out[i] !== 0xff) throw new Error('not at a marker');
    const marker = out[i + 1];
    const len = (out[i + 2] << 8) | out[i + 3];
    if (marker === 0xc0 || marker === 0xc2) {
      out[i + 5] = height >> 8; out[i + 6] = height & 255;
      out[i + 7] = width >> 8; out[i + 8] = width & 255;
      return out;
    }
    i += 2 + len;
  }
  throw new Error('no SOF marker');
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 255] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  view.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

export interface PngSpec {
  width: number;
  height: number;
  /** 0 grey, 2 RGB, 3 palette, 4 grey+alpha, 6 RGBA */
  colorType: 0 | 2 | 3 | 4 | 6;
  bitDepth: 1 | 2 | 4 | 8 | 16;
  /** Samples row-major, channels interleaved, in the bit depth's range (palette: indices). */
  samples: ArrayLike<number>;
  palette?: [number, number, number][];
  /** tRNS: alpha per palette entry. */
  paletteAlpha?: number[];
}

export function encodePng(s: PngSpec): Uint8Array {
  const channels = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 }[s.colorType];
  const ihdr = new Uint8Array(13);
  const v = new DataView(ihdr.buffer);
  v.setUint32(0, s.width);
  v.setUint32(4, s.height);
  ihdr[8] = s.bitDepth;
  ihdr[9] = s.colorType;
  const rowBits = s.width * channels * s.bitDepth;
  const rowBytes = Math.ceil(rowBits / 8);
  const raw = new Uint8Array((rowBytes + 1) * s.height);
  for (let y = 0; y < s.height; y++) {
    const base = y * (rowBytes + 1) + 1; // filter byte 0 (None)
    for (let k = 0; k < s.width * channels; k++) {
      const val = s.samples[y * s.width * channels + k];
      if (s.bitDepth === 16) {
        raw[base + 2 * k] = val >> 8;
        raw[base + 2 * k + 1] = val & 255;
      } else if (s.bitDepth === 8) {
        raw[base + k] = val;
      } else {
        const bit = k * s.bitDepth;
        raw[base + (bit >> 3)] |= val << (8 - s.bitDepth - (bit & 7));
      }
    }
  }
  const parts = [Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr)];
  if (s.palette) parts.push(chunk('PLTE', Uint8Array.from(s.palette.flat())));
  if (s.paletteAlpha) parts.push(chunk('tRNS', Uint8Array.from(s.paletteAlpha)));
  parts.push(chunk('IDAT', deflateSync(raw)), chunk('IEND', new Uint8Array(0)));
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
