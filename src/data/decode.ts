// Image decoding to packed 8-bit RGB (HWC). JPEG through jpeg-js, PNG through pngjs; the format
// comes from the file's magic bytes, not its extension (a PNG named .jpg still decodes).
// Every failure is a DecodeError carrying the path, so callers can skip the file and report it.
import { PNG } from 'pngjs';
import { readFileSync } from 'node:fs';
import { DEFAULT_DECODE_LIMITS, DecodeError, decodeJpeg, rgbaOverBlack, sniffFormat } from './image-format.ts';

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
    throw new DecodeError(path, `${format}: ${msg}`);
  }
  if (!(img.width > 0 && img.height > 0)) throw new DecodeError(path, `${format}: zero-sized image`);
  return img;
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
