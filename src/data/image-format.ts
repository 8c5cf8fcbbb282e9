// Image formats and decode errors, platform-neutral (the web demo decodes with the browser but accepts
// and rejects the same files as decode.ts, with the same messages).

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
