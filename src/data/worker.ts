// Worker thread entry: decode + resize jobs posted by WorkerPool. Started with
// `new Worker(new URL('./worker.ts', import.meta.url), { execArgv: ['--import', 'tsx'] })`.
import { parentPort } from 'node:worker_threads';
import { runDecodeJob, type DecodeJob } from './tasks.ts';

if (!parentPort) throw new Error('src/data/worker.ts must run in a worker thread');
const port = parentPort;
port.on('message', (job: DecodeJob) => {
  const out = { ...runDecodeJob(job), thread: 'worker' as const };
  const transfer = out.results.flatMap((r) => (r.ok ? [r.data.buffer as ArrayBuffer] : []));
  port.postMessage(out, transfer);
});
// Say hello once started, so the pool can unref this worker again (see pool.ts).
port.postMessage({ ready: true });
