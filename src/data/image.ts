// One image file to a model input, the way the loader's evaluation path prepares it (for predict).
import { decodeFile, type DecodeLimits } from './decode.ts';
import { resizeSquare } from './resize.ts';
import { normalizeToChw } from './augment.ts';

/** Decode, resize to size x size and normalise: float32 [3, size, size]. Throws DecodeError. */
export function loadImageTensor(path: string, size: number, mean: ArrayLike<number>, std: ArrayLike<number>, limits?: DecodeLimits): Float32Array {
  return normalizeToChw(resizeSquare(decodeFile(path, limits), size), mean, std);
}
