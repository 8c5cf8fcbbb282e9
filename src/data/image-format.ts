// Image formats and decode errors, platform-neutral (the web demo decodes with the browser but accepts
// and rejects the same files as decode.ts, with the same messages), and the JPEG decoder both use:
// the browser's own (libjpeg-turbo) gives pixels a few levels off jpeg-js', which moves predictions.
import jpeg from 'jpeg-js';
import type { DecodeLimits, RgbImage } from './decode.ts';

export const DEFAULT_DECODE_LIMITS: Required<DecodeLimits> = { maxMegapixels: 50, maxMemoryMB: 512 };

export class DecodeError extends Error {
  constructor(readonly path: string, readonly reason: string) {
    super(`cannot decode ${path}: ${reason}`);
    this.name = 'DecodeError';
  }
}

export type ImageFormat = 'jpeg' | 'png';

export function sniffFormat(bytes: Uint8Array): ImageFormat | null {
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'jpeg';
  const png = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
  if (bytes.length >= 8 && png.every((b, i) => bytes[i] === b)) return 'png';
  return null;
}

/** RGBA (not premultiplied) to RGB with alpha composited over black (rgb * a / 255), as decode.ts does for PNG. */
export function rgbaOverBlack(rgba: ArrayLike<number>, n: number): Uint8Array {
  const rgb = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) {
    const a = rgba[4 * i + 3];
    if (a === 255) {
      rgb[3 * i] = rgba[4 * i];
      rgb[3 * i + 1] = rgba[4 * i + 1];
      rgb[3 * i + 2] = rgba[4 * i + 2];
    } else {
      rgb[3 * i] = Math.round((rgba[4 * i] * a) / 255);
      rgb[3 * i + 1] = Math.round((rgba[4 * i + 1] * a) / 255);
      rgb[3 * i + 2] = Math.round((rgba[4 * i + 2] * a) / 255);
    }
  }
  return rgb;
}

/** JPEG bytes to RGB with jpeg-js (decodeImage in decode.ts adds the format check and error wrapping). */
export function decodeJpeg(bytes: Uint8Array, lim: Required<DecodeLimits>): RgbImage {
  // tolerantDecoding stays on (jpeg-js' default): it accepts the slightly damaged scans that
  // libjpeg also accepts; truncated files still fail ("marker was not found").
  const out = jpeg.decode(bytes, {
    useTArray: true,
    formatAsRGBA: false,
    tolerantDecoding: true,
    maxResolutionInMP: lim.maxMegapixels,
    maxMemoryUsageInMB: lim.maxMemoryMB,
  });
  if (out.data.length !== out.width * out.height * 3) throw new Error('unexpected output size');
  return { width: out.width, height: out.height, data: out.data };
}
