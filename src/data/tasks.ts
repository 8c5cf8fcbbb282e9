// The unit of work the loader hands to worker threads (or runs inline): read one file, decode it,
// resize it to the cache resolution. Failures come back as a reason string, never as a throw.
import { decodeFile, DecodeError, type DecodeLimits } from './decode.ts';
import { resizeSquare } from './resize.ts';

export type DecodeResult = { ok: true; data: Uint8Array } | { ok: false; reason: string };

export interface DecodeJob {
  id: number;
  paths: string[];
  /** Square side the images are resized to (the cache resolution). */
  size: number;
  limits?: DecodeLimits;
}

export interface DecodeJobResult {
  id: number;
  results: DecodeResult[];
  /** Where the job ran: a worker thread, or the main thread (workers: 0, or a worker failed). */
  thread: 'worker' | 'main';
}

export function decodeResized(path: string, size: number, limits?: DecodeLimits): DecodeResult {
  try {
    const data = resizeSquare(decodeFile(path, limits), size).data;
    // A buffer of its own, so the worker can transfer it without copying.
    return { ok: true, data: data.byteLength === data.buffer.byteLength ? data : data.slice() };
  } catch (e) {
    const reason = e instanceof DecodeError ? e.reason : e instanceof Error ? `${e.name}: ${e.message}` : String(e);
    return { ok: false, reason };
  }
}

export function runDecodeJob(job: DecodeJob): DecodeJobResult {
  return { id: job.id, results: job.paths.map((p) => decodeResized(p, job.size, job.limits)), thread: 'main' };
}
