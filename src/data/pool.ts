// A small pool of decode workers. Jobs queue in the main thread and go to whichever worker is
// free; idle workers are unref'd so they never keep the process alive, and close() terminates
// them. If a worker cannot start or dies, its job is decoded in the main thread instead (a
// failure there only marks files as undecodable), and a replacement is started for later jobs.
import { Worker } from 'node:worker_threads';
import { runDecodeJob, type DecodeJob, type DecodeJobResult } from './tasks.ts';

interface Pending {
  job: DecodeJob;
  resolve: (r: DecodeJobResult) => void;
  reject: (e: Error) => void;
}

interface Slot {
  worker: Worker;
  busy: Pending | null;
}

/**
 * Start src/data/worker.ts. Under tsx (this file is .ts) the documented
 * `new Worker(url, { execArgv: ['--import', 'tsx'] })` fails on Node 20 ("Unknown file extension
 * .ts": loader hooks do not reach workers there), so a two-line bootstrap registers tsx inside the
 * worker first and then imports the entry. Compiled to .js, the worker is started directly.
 */
export function startDecodeWorker(): Worker {
  const entry = new URL(import.meta.url.endsWith('.ts') ? './worker.ts' : './worker.js', import.meta.url);
  if (!entry.pathname.endsWith('.ts')) return new Worker(entry);
  const tsxApi = import.meta.resolve('tsx/esm/api');
  const bootstrap = `import(${JSON.stringify(tsxApi)}).then((m) => { m.register(); return import(${JSON.stringify(entry.href)}); });`;
  return new Worker(bootstrap, { eval: true });
}

export class WorkerPool {
  private slots: Slot[] = [];
  private queue: Pending[] = [];
  private closed = false;
  private failures = 0;
  /** Called once with a message when workers fail (e.g. cannot start). */
  onWarning: (message: string) => void = (m) => console.warn(m);

  constructor(readonly size: number) {
    for (let i = 0; i < size; i++) this.slots.push(this.spawn());
  }

  private spawn(): Slot {
    const worker = startDecodeWorker();
    const slot: Slot = { worker, busy: null };
    worker.unref();
    worker.on('message', (res: DecodeJobResult | { ready: true }) => {
      if ('ready' in res) {
        // Unref again once started: on Node 20 the unref() at spawn does not stick for a worker
        // that is still booting, and it would keep the process alive.
        if (slot.busy) worker.ref();
        else worker.unref();
        return;
      }
      const p = slot.busy;
      slot.busy = null;
      worker.unref();
      p?.resolve(res);
      this.pump();
      this.updateKeepAlive();
    });
    const fail = (why: string) => {
      if (!this.slots.includes(slot)) return;
      this.slots.splice(this.slots.indexOf(slot), 1);
      void worker.terminate();
      if (this.closed) return;
      if (this.failures++ === 0) this.onWarning(`data loader: a decode worker failed (${why}); decoding its images in the main thread`);
      const p = slot.busy;
      if (p) p.resolve(runDecodeJob(p.job));
      // Replace it, unless workers keep failing (then everything runs inline).
      if (this.failures < 3 * this.size) this.slots.push(this.spawn());
      this.pump();
    };
    worker.on('error', (e: Error) => fail(e.message));
    worker.on('messageerror', (e) => fail(String(e)));
    worker.on('exit', (code) => fail(`exited with code ${code}`));
    return slot;
  }

  run(job: DecodeJob): Promise<DecodeJobResult> {
    if (this.closed) return Promise.reject(new Error('WorkerPool is closed'));
    return new Promise((resolve, reject) => {
      this.queue.push({ job, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    if (this.slots.length === 0) {
      // No workers left: run inline (synchronously, one job per tick).
      const p = this.queue.shift();
      if (p) {
        setImmediate(() => {
          if (this.closed) return p.reject(new Error('WorkerPool closed'));
          p.resolve(runDecodeJob(p.job));
          this.pump();
        });
      }
      return;
    }
    for (const slot of this.slots) {
      if (slot.busy || this.queue.length === 0) continue;
      const p = this.queue.shift()!;
      slot.busy = p;
      slot.worker.ref(); // a job in flight keeps the process alive until it answers
      slot.worker.postMessage(p.job);
    }
    this.updateKeepAlive();
  }

  // ref() on a worker that is still booting does not always stick on Node 20, so while jobs are
  // in flight a timer also keeps the event loop alive (else an awaiting consumer could be dropped).
  private keepAlive: ReturnType<typeof setInterval> | null = null;
  private updateKeepAlive(): void {
    const inFlight = !this.closed && (this.queue.length > 0 || this.slots.some((s) => s.busy));
    if (inFlight && !this.keepAlive) this.keepAlive = setInterval(() => {}, 60_000);
    if (!inFlight && this.keepAlive) {
      clearInterval(this.keepAlive);
      this.keepAlive = null;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.updateKeepAlive();
    const slots = this.slots;
    this.slots = [];
    // Jobs still queued or in flight fail, so no awaiting consumer hangs.
    const err = new Error('WorkerPool closed');
    for (const s of slots) s.busy?.reject(err);
    for (const p of this.queue.splice(0)) p.reject(err);
    // terminate() of an unref'd worker resolves only if something keeps the event loop alive
    const alive = setInterval(() => {}, 60_000);
    try {
      await Promise.all(slots.map((s) => s.worker.terminate()));
    } finally {
      clearInterval(alive);
    }
  }
}
