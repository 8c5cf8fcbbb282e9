// Image decoding to packed 8-bit RGB (HWC). JPEG through jpeg-js, PNG through pngjs; the format
// comes from the file's magic bytes, not its extension (a PNG named .jpg still decodes).
// Every failure is a DecodeError carrying the path, so callers can skip the file and report it.
import { PNG } from 'pngjs';
import { readFileSync } from 'node:fs';
import { DEFAULT_DECODE_LIMITS, DecodeError, decodeJpeg, rgbaOverBlack, sniffFormat, type ImageFormat } from './image-format.ts';

export { DEFAULT_DECODE_LIMITS, DecodeError, rgbaOverBlack, sniffFormat, type ImageFormat } from './image-format.ts';

/** A decoded image: width x height pixels, 3 bytes (R, G, B) per pixel, rows top to bottom. */
export interface RgbImage {
  width: number;
  height: number;
  data: Uint8Array;
}

export interface DecodeLimits {
  /** Largest accepted width*height in megapixels (checked from the header, before decoding). */
  maxMegapixels?: number;
  /** jpeg-js' cap on the memory one decode may allocate. */
  maxMemoryMB?: number;
}


/** Decode JPEG or PNG bytes; `path` only labels errors. */
export function decodeImage(bytes: Uint8Array, path = '<buffer>', limits: DecodeLimits = {}): RgbImage {
  const lim = { ...DEFAULT_DECODE_LIMITS, ...limits };
  if (bytes.length === 0) throw new DecodeError(path, 'empty file');
  const format = sniffFormat(bytes);
  if (!format) throw new DecodeError(path, 'not a JPEG or PNG file');
  let img: RgbImage;
  try {
    img = format === 'jpeg' ? decodeJpeg(bytes, lim) : decodePng(bytes, lim);
  } catch (e) {
    if (e instanceof DecodeError) throw e;
    const msg = e instanceof Error ? e.message : String(e);
    throw new DecodeError(path, `${format}: ${describeFailure(format, bytes, msg)}`);
  }
  if (!(img.width > 0 && img.height > 0)) throw new DecodeError(path, `${format}: zero-sized image`);
  return img;
}

/**
 * Why a decode failed, in words: the libraries' messages ("marker was not found", pngjs' "There are
 * some read requests waitng on finished stream") hide that the usual cause is a file cut short.
 */
function describeFailure(format: ImageFormat, bytes: Uint8Array, msg: string): string {
  const cut = (end: string) => `truncated: the file ends before its ${end} (an incomplete download or copy?)`;
  if (format === 'jpeg') return jpegHasEnd(bytes) ? `corrupt: ${msg}` : `${cut('end-of-image marker')}; ${msg}`;
  if (!pngHasEnd(bytes)) return cut('IEND chunk');
  return /read requests/.test(msg) ? 'corrupt: a chunk runs past the end of the data' : `corrupt: ${msg}`;
}

/** Whether an end-of-image marker (FF D9) follows the last start-of-scan (FF DA), as in every complete JPEG. */
function jpegHasEnd(b: Uint8Array): boolean {
  let i = b.length - 2;
  while (i >= 2 && !(b[i] === 0xff && b[i + 1] === 0xda)) i--;
  if (i < 2) return false;
  for (i += 2; i + 1 < b.length; i++) if (b[i] === 0xff && b[i + 1] === 0xd9) return true;
  return false;
}

/** Whether the file has a whole IEND chunk (length 0, "IEND", its fixed CRC) after its header. */
function pngHasEnd(b: Uint8Array): boolean {
  const iend = [0, 0, 0, 0, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82];
  for (let i = b.length - iend.length; i >= 8; i--) if (iend.every((v, k) => b[i + k] === v)) return true;
  return false;
}

/** Read and decode a file; a read failure is a DecodeError too. */
export function decodeFile(path: string, limits?: DecodeLimits): RgbImage {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new DecodeError(path, `unreadable: ${(e as Error).message}`);
  }
  return decodeImage(bytes, path, limits);
}

/**
 * PNG: pngjs expands grey, grey+alpha, palette (with tRNS) and 16-bit to RGBA8. Alpha is
 * composited over black (rgb * a / 255), so fully transparent pixels are black whatever colour
 * they hide; pngjs already blackens tRNS colour-key pixels the same way.
 */
function decodePng(bytes: Uint8Array, lim: Required<DecodeLimits>): RgbImage {
  if (bytes.length < 24) throw new Error('truncated header');
  // IHDR is always the first chunk: width and height at bytes 16..23. Check before pngjs allocates.
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const width = view.getUint32(16), height = view.getUint32(20);
  if (width * height > lim.maxMegapixels * 1e6) {
    throw new Error(`${width}x${height} exceeds the ${lim.maxMegapixels} megapixel limit`);
  }
  const png = PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  const n = png.width * png.height;
  const rgba = png.data;
  if (rgba.length !== n * 4) throw new Error('unexpected output size');
  const rgb = rgbaOverBlack(rgba, n);
  return { width: png.width, height: png.height, data: rgb };
}
