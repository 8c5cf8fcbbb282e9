// Node host: Dawn's WebGPU bindings (npm `webgpu`).
import { mkdirSync } from 'node:fs';
import type { Platform } from './platform.ts';

// webgpu 0.6.2 crashes the process when the object returned by create() is garbage-collected,
// so it lives here for the life of the process.
let dawn: GPU | null = null;

export async function nodePlatform(): Promise<Platform> {
  if (!process.env.XDG_RUNTIME_DIR) {
    // Mesa's lavapipe wants a runtime dir; an unset one only produces warnings, but set it anyway.
    const dir = `/tmp/xdg-runtime-${process.getuid?.() ?? 0}`;
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    process.env.XDG_RUNTIME_DIR = dir;
  }
  if (!dawn) {
    const webgpu = await import('webgpu');
    Object.assign(globalThis, webgpu.globals);
    // unquantized GPU timestamps: Dawn rounds them to 65.5 µs by default (a browser's timing-attack guard)
    dawn = webgpu.create(['disable-dawn-features=timestamp_quantization']) as unknown as GPU;
    throttleDawnPolling();
  }
  return { gpu: dawn, keepAlive: dawn, deviceCreated: ({ isCPU }) => { pollOnTimer ||= isCPU; } };
}

/** Set once a device runs on a CPU adapter: only then do Dawn's polls compete with the GPU's work. */
let pollOnTimer = false;
/** Dawn's polls so far, by how they were scheduled (tests read them). */
export const dawnPolls = { immediate: 0, timed: 0 };

/** How long a wait for the GPU polls back to back before it polls on a timer (short waits stay short). */
const BUSY_POLL_MS = 1;
/** The timer's period once it does: what a wait can overshoot the GPU's finish by. */
const POLL_PERIOD_MS = 1;

/**
 * While a GPU promise is pending (mapAsync, onSubmittedWorkDone, ...), Dawn's Node bindings poll for
 * finished work by rescheduling themselves with the global setImmediate: a busy loop on the main thread.
 * On a CPU adapter that loop competes with the threads doing the GPU's work: with 2 cores, lavapipe got
 * about one of them, and the fused attention at 577 tokens ran 1.7x faster with the polls on a 1 ms timer.
 * So once a device runs on a CPU adapter, Dawn's poll (the only anonymous native callback of no
 * arguments it schedules; looked up on the global each time) runs back to back for BUSY_POLL_MS of a
 * wait, then every POLL_PERIOD_MS. On a GPU the loop only spins a spare core, and a timer would add up
 * to a millisecond to every wait, so it stays as it was. Every other callback goes straight to setImmediate.
 */
function throttleDawnPolling(): void {
  const immediate = globalThis.setImmediate;
  const nativeSource = Function.prototype.toString.call(Math.max).replace('max', '');
  const isDawnPoll = (fn: unknown): fn is (...args: unknown[]) => void =>
    typeof fn === 'function' && fn.name === '' && fn.length === 0 && Function.prototype.toString.call(fn) === nativeSource;
  let waitStart = 0;
  let polling = false;  // inside a poll: a poll scheduled now continues its wait
  const throttled = ((callback: unknown, ...args: unknown[]) => {
    if (isDawnPoll(callback)) {
      const now = performance.now();
      if (!polling) waitStart = now;  // a new GPU promise started the polls
      const poll = () => {
        polling = true;
        try { callback(...args); } finally { polling = false; }
      };
      if (pollOnTimer && now - waitStart > BUSY_POLL_MS) {
        dawnPolls.timed++;
        return setTimeout(poll, POLL_PERIOD_MS);
      }
      dawnPolls.immediate++;
      return immediate(poll);
    }
    return immediate(callback as (...a: unknown[]) => void, ...args);
  }) as typeof setImmediate;
  Object.assign(throttled, immediate);  // util.promisify's custom form and any other properties
  globalThis.setImmediate = throttled;
}
