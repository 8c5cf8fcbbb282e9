// The web demo page: wires demo.ts to index.html. Errors go to the page's error box (and the console).
/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
import { SETUP_HINT } from '../../src/index.ts';
import * as demo from './demo.ts';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const errors = $('errors'), status = $('status');

function showError(message: string): void {
  console.error(message);
  errors.textContent += (errors.textContent ? '\n' : '') + message;
}
window.addEventListener('error', (e) => showError(e.message));
window.addEventListener('unhandledrejection', (e) => showError(String((e.reason as Error)?.message ?? e.reason)));

/** What the tests read: the current classifier, the last predictions and training run. */
const state: {
  device: demo.Device | null; classifier: demo.Classifier | null; predictions: (demo.PagePrediction | { name: string; error: string })[];
  training: Awaited<ReturnType<typeof demo.trainSynthetic>> | null; busy: boolean;
} = { device: null, classifier: null, predictions: [], training: null, busy: false };
const ready = start();
ready.catch(() => {}); // start() already showed its error
(window as unknown as { demo: unknown }).demo = { ...demo, state, ready };

async function start(): Promise<void> {
  if (!navigator.gpu) {
    throw fail('This browser has no WebGPU (navigator.gpu is missing). Use Chrome or Edge 113+, or enable WebGPU: ' +
      'chrome://flags/#enable-unsafe-webgpu (on Linux also start Chrome with --enable-features=Vulkan).');
  }
  let device: demo.Device;
  try {
    device = await demo.Device.create();
  } catch (e) {
    throw fail(`WebGPU: ${(e as Error).message.includes('no WebGPU adapter') ? `no adapter. ${SETUP_HINT}` : (e as Error).message}`);
  }
  state.device = device;
  device.gpu.lost.then((info) => {
    if (info.reason !== 'destroyed') showError(`The WebGPU device was lost (${info.reason}: ${info.message}). Reload the page to start again.`);
  });
  status.textContent = `WebGPU adapter: ${device.description}; matmul kernels: ${demo.kernelVariantsOf(device)}`;
  try {
    const c = await demo.fetchCheckpoint(new URL('checkpoint/', location.href).href);
    if (c) useClassifier(c);
    else $('model-status').textContent = 'no default checkpoint (run `npm run catsvdogs`, or drop checkpoint files, or train one on the right)';
  } catch (e) {
    showError(`Default checkpoint: ${(e as Error).message}`);
  }
}

function fail(message: string): Error {
  showError(message);
  status.textContent = 'WebGPU unavailable';
  return new Error(message);
}

function useClassifier(c: demo.Classifier): void {
  state.classifier?.model.dispose();
  state.classifier = c;
  const cfg = c.model.config;
  $('model-status').textContent = `${c.source} (${cfg.num_hidden_layers} layers, hidden ${cfg.hidden_size}, ` +
    `${cfg.imageHW[0]} px, labels ${c.labels.join(', ')})${c.note ? ` — ${c.note}` : ''}`;
}

const bytesOf = async (f: File) => new Uint8Array(await f.arrayBuffer());

async function handleFiles(files: File[]): Promise<void> {
  const checkpoint = files.filter((f) => [demo.CONFIG_FILE, demo.WEIGHTS_FILE, demo.PREPROCESSOR_FILE].includes(f.name));
  const photos = files.filter((f) => !checkpoint.includes(f));
  if (checkpoint.length) {
    try {
      const map = new Map<string, Uint8Array>();
      for (const f of checkpoint) map.set(f.name, await bytesOf(f));
      useClassifier(await demo.loadCheckpoint(map, 'dropped files'));
    } catch (e) {
      showError((e as Error).message);
    }
  }
  if (photos.length) await predict(photos);
}

async function predict(photos: File[]): Promise<void> {
  await (window as unknown as { demo: { ready: Promise<void> } }).demo.ready;
  const c = state.classifier;
  if (!c) {
    showError('No model to predict with: drop checkpoint files (config.json, model.safetensors, preprocessor_config.json) or train one first.');
    return;
  }
  const results = $('results');
  results.textContent = '';
  state.predictions = [];
  for (const f of photos) {
    const card = document.createElement('div');
    card.className = 'card';
    results.append(card);
    try {
      const p = await demo.predictPhoto(c, await demo.decodePhoto(await bytesOf(f), f.name), f.name);
      state.predictions.push(p);
      const canvas = document.createElement('canvas');
      canvas.width = p.overlay.width;
      canvas.height = p.overlay.height;
      canvas.getContext('2d')!.putImageData(new ImageData(new Uint8ClampedArray(p.overlay.data), p.overlay.width, p.overlay.height), 0, 0);
      const label = document.createElement('div');
      label.className = 'label';
      label.textContent = `${p.label} ${(100 * p.probability).toFixed(1)}%`;
      const name = document.createElement('div');
      name.textContent = f.name;
      card.append(canvas, label, name);
      card.dataset.probabilities = JSON.stringify(p.probabilities);
    } catch (e) {
      const message = (e as Error).message;
      state.predictions.push({ name: f.name, error: message });
      card.classList.add('error');
      card.textContent = message;
      showError(message);
    }
  }
}

$<HTMLInputElement>('photos').addEventListener('change', (e) => handleFiles([...((e.target as HTMLInputElement).files ?? [])]));
$<HTMLInputElement>('checkpoint-files').addEventListener('change', (e) => handleFiles([...((e.target as HTMLInputElement).files ?? [])]));
const drop = $('drop');
drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', (e) => {
  e.preventDefault();
  drop.classList.remove('over');
  handleFiles([...(e.dataTransfer?.files ?? [])]);
});

// ---- training ---------------------------------------------------------------------------------------

let stopRequested = false;
$('stop-button').addEventListener('click', () => { stopRequested = true; });
$('train-button').addEventListener('click', () => { train().catch((e) => showError(`Training: ${(e as Error).message}`)); });

function drawChart(losses: number[], epochs: demo.EpochResult[], steps: number): void {
  const canvas = $<HTMLCanvasElement>('chart');
  const ctx = canvas.getContext('2d')!;
  const W = canvas.width, H = canvas.height, pad = 24;
  ctx.clearRect(0, 0, W, H);
  ctx.font = '11px sans-serif';
  const top = Math.max(1, ...losses);
  const x = (step: number) => pad + ((W - 2 * pad) * step) / Math.max(1, steps);
  const y = (v: number, hi: number) => H - pad - ((H - 2 * pad) * v) / hi;
  ctx.strokeStyle = '#999';
  ctx.strokeRect(pad, pad, W - 2 * pad, H - 2 * pad);
  const line = (pts: [number, number][], color: string) => {
    ctx.strokeStyle = color;
    ctx.beginPath();
    pts.forEach(([px, py], i) => (i ? ctx.lineTo(px, py) : ctx.moveTo(px, py)));
    ctx.stroke();
    for (const [px, py] of pts.length < 30 ? pts : []) ctx.fillRect(px - 1.5, py - 1.5, 3, 3);
  };
  line(losses.map((l, i) => [x(i + 1), y(l, top)]), '#1f77b4');
  const perEpoch = steps / Math.max(1, Number(($('epochs') as HTMLInputElement).value));
  ctx.fillStyle = '#ff7f0e';
  line(epochs.map((e) => [x(e.epoch * perEpoch), y(e.val_acc, 1)]), '#ff7f0e');
  line(epochs.map((e) => [x(e.epoch * perEpoch), y(e.acc, 1)]), '#2ca02c');
  ctx.fillStyle = '#333';
  ctx.fillText(`loss (blue, 0..${top.toFixed(2)}), train acc (green) and val_acc (orange, 0..1)`, pad, pad - 8);
}

async function train(): Promise<void> {
  await (window as unknown as { demo: { ready: Promise<void> } }).demo.ready;
  if (state.busy) return;
  state.busy = true;
  stopRequested = false;
  const num = (id: string) => Number(($(id) as HTMLInputElement).value);
  const settings: demo.TrainSettings = { ...demo.DEFAULT_TRAIN, epochs: num('epochs'), perClass: num('per-class'), batchSize: num('batch') };
  const log = $('log'), bar = $<HTMLProgressElement>('train-progress'), downloads = $('downloads');
  log.textContent = `Drawing ${2 * settings.perClass} synthetic images, then ${settings.epochs} epochs at batch ${settings.batchSize}\n`;
  downloads.textContent = '';
  $<HTMLButtonElement>('train-button').disabled = true;
  $<HTMLButtonElement>('stop-button').disabled = false;
  const losses: number[] = [], epochs: demo.EpochResult[] = [];
  const t0 = performance.now();
  try {
    const result = await demo.trainSynthetic(settings, {
      onStep: ({ step, steps, loss }) => {
        losses.push(loss);
        bar.max = steps;
        bar.value = step;
        drawChart(losses, epochs, steps);
      },
      onEpoch: (e) => {
        epochs.push(e);
        log.textContent += `${e.line}\n`;
        log.scrollTop = log.scrollHeight;
      },
      shouldStop: () => stopRequested,
    });
    state.training?.classifier.model.dispose();
    state.training = result;
    log.textContent += `Done in ${((performance.now() - t0) / 1000).toFixed(1)} s (${result.losses.length} steps)\n`;
    for (const [name, bytes] of await demo.checkpointFilesOf(result.classifier)) {
      const a = document.createElement('a');
      a.href = URL.createObjectURL(new Blob([bytes as BlobPart]));
      a.download = name;
      a.textContent = name;
      downloads.append(a);
    }
    const use = document.createElement('button');
    use.textContent = 'Predict with this model';
    use.id = 'use-trained';
    use.addEventListener('click', async () => {
      const files = await demo.checkpointFilesOf(result.classifier);
      useClassifier(await demo.loadCheckpoint(files, 'trained in this page'));
    });
    downloads.prepend('Download the checkpoint (load it in Node with fromPretrained or `predict --checkpoint DIR`): ');
    downloads.append(use);
  } finally {
    state.busy = false;
    $<HTMLButtonElement>('train-button').disabled = false;
    $<HTMLButtonElement>('stop-button').disabled = true;
  }
}
