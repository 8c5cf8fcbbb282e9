// ViT throughput (`npm run bench:vit -- [flags]`): a full training step (forward, backward, AdamW,
// loss read back) and inference (forward, logits read back) in images per second; the first step's
// time (pipeline compilation included); a breakdown by phase from per-dispatch GPU timestamps; peak
// GPU memory against a napkin sum; memory after step 2 against after the last step.
//
// Defaults: ViT-Ti/16 at 224 px, batch 8, 2 labels. Flags: --image --patch --hidden --layers --heads
// --mlp --batch --labels --steps (timed training steps after 2 untimed) --infer (timed inference
// batches) --lr (AdamW's, default 1e-4) --variant register|shared --no-profile --json (last line: one JSON object).
import { Device, type DispatchDesc, type KernelTiming } from '../src/gpu/device.ts';
import { kernelVariants, setKernelVariants, type KernelVariant } from '../src/ops/variants.ts';
import { scratchTextureBytes } from '../src/ops/scratch-textures.ts';
import { Tensor, tidy, keep } from '../src/tensor.ts';
import { noGrad } from '../src/autograd.ts';
import { manualSeed } from '../src/nn/random.ts';
import { ViTForImageClassification } from '../src/vit/modeling.ts';
import { AdamW } from '../src/optim/adamw.ts';
import { autotune } from '../src/ops/autotune.ts';
import { randn } from './validate.ts';
import { flag, numFlag, median, adapterInfo, table, fmt, mib, vitRunFailures, type VitMemory } from './common.ts';

const args = process.argv.slice(2);
const cfg = {
  image: numFlag(args, 'image', 224),
  patch: numFlag(args, 'patch', 16),
  hidden: numFlag(args, 'hidden', 192),
  layers: numFlag(args, 'layers', 12),
  heads: numFlag(args, 'heads', 3),
  mlp: numFlag(args, 'mlp', 768),
  batch: numFlag(args, 'batch', 8),
  labels: numFlag(args, 'labels', 2),
};
const steps = Math.max(1, numFlag(args, 'steps', 5));
const lr = numFlag(args, 'lr', 1e-4);
const inferReps = Math.max(1, numFlag(args, 'infer', 5));
const json = flag(args, 'json') !== undefined;
const profile = flag(args, 'no-profile') === undefined;
const variant = flag(args, 'variant') as KernelVariant | undefined;
if (variant && variant !== 'register' && variant !== 'shared') throw new Error(`--variant must be register or shared, got "${variant}"`);
const log = (s = '') => console.log(s);

const { image, patch, hidden: D, layers: L, heads: H, mlp: M, batch: B, labels } = cfg;
if (image % patch) throw new Error(`--image ${image} is not a multiple of --patch ${patch}`);
const T = (image / patch) ** 2; // patches
const S = T + 1; // tokens with [CLS]
const label = `img${image}/p${patch}/L${L}/D${D}/H${H}/MLP${M}/B${B}`;

// ---- device, model, optimizer, data -----------------------------------------------------------
const t0 = performance.now();
const device = await Device.create();
if (variant) setKernelVariants(device, { matmul: variant });
const tuned = variant ? null : await autotune(device);
const deviceCreateS = (performance.now() - t0) / 1000;
log(`adapter: ${device.description}`);
log(`matmul variant: ${kernelVariants(device).matmul}${tuned ? ` (autotune ${tuned.source}${tuned.source === 'measured' ? ` in this run: ${Object.entries(tuned.ms).map(([k, v]) => `${k} ${fmt(v as number)} ms`).join(', ')}` : ''})` : variant ? ' (forced)' : ''}` +
  `; Device.create ${fmt(deviceCreateS, 2)} s; timing: ${device.canTime ? 'GPU timestamps' : 'wall clock only'}`);

manualSeed(0);
const model = new ViTForImageClassification({
  image_size: image, patch_size: patch, hidden_size: D, num_hidden_layers: L, num_attention_heads: H,
  intermediate_size: M, num_labels: labels,
});
model.train();
const params = model.numParameters();
const opt = new AdamW(model.parameters(), { lr });
const pixels = keep(Tensor.fromArray(randn(B * 3 * image * image, 1), [B, 3, image, image]));
const target = keep(Tensor.fromArray(Int32Array.from({ length: B }, (_, i) => i % labels), [B]));
await device.sync();

// forward multiply-adds per image (as the peer script counts them); training ~ 3x forward
const forwardMacs = T * 3 * patch * patch * D + L * (S * D * 3 * D + 2 * S * S * D + S * D * D + 2 * S * D * M) + D * labels;
const forwardFlops = 2 * forwardMacs;
log(`ViT ${label}: ${params.toLocaleString('en-US')} parameters, ${fmt(forwardFlops / 1e9, 3)} GFLOP forward per image\n`);

// ---- phases: dispatches are labelled "phase|shader:entry" for the profile -----------------------
const rowsTokens = B * S;
/** The phase of a dispatch; pack_operand dispatches take the phase of the product they feed. */
function phaseOf(d: DispatchDesc): string {
  // matmul.wgsl, matmul_texture.wgsl, ...; attention.wgsl and the fused attention_fused*.wgsl
  const family = ['matmul', 'attention'].find((f) => d.shader.name.startsWith(f)) ?? d.shader.name;
  switch (family) {
    case 'patchify': return 'patchify + embeddings';
    case 'attention': return 'attention core (QK^T, softmax, PV)';
    case 'matmul': {
      // which layer, by the product's M, N, K (the first uniforms) and batch (workgroups z): the attention
      // core's products (src/ops/attention.ts runs them here on lavapipe) are batched over images and heads;
      // the linear layers' have B*S rows, and the MLP's also an mlp-wide side (q/k/v/out are D x D)
      const u = d.uniforms ?? {};
      const dims = [u.M, u.N, u.K].map(Number);
      const items = d.workgroups[2] ?? 1;
      if (items > 1 && Number(u.heads) > 1) return 'attention core (QK^T, softmax, PV)';
      if (items > 1) { // a GPU's K slices of a weight gradient: M x N is the weight
        return [u.M, u.N].map(Number).includes(M) ? 'MLP matmuls (fc1, fc2)' : 'attention matmuls (q, k, v, out)';
      }
      if (dims.includes(rowsTokens) && dims.includes(M)) return 'MLP matmuls (fc1, fc2)';
      if (dims.includes(rowsTokens) && dims.filter((x) => x === D).length === 2) return 'attention matmuls (q, k, v, out)';
      return 'other matmuls (patch embedding, classifier)';
    }
    case 'layernorm': case 'layernorm_subgroup': return 'layernorm';
    case 'elementwise':
      return d.entry.startsWith('gelu') ? 'GELU' : 'elementwise + reductions (add, fill, bias sums)';
    case 'reduce': return 'elementwise + reductions (add, fill, bias sums)';
    case 'loss': return 'cross-entropy';
    case 'adamw': return 'optimizer (AdamW)';
    default: return `other (${d.shader.name})`;
  }
}

interface Phase { phase: string; ms: number; dispatches: number; top: string }

function phases(timings: KernelTiming[]): Phase[] {
  const byPhase = new Map<string, { ms: number; dispatches: number; entries: Map<string, number> }>();
  for (const t of timings) {
    const [phase, entry] = t.name.includes('|') ? t.name.split('|') : ['other', t.name];
    const p = byPhase.get(phase) ?? { ms: 0, dispatches: 0, entries: new Map() };
    p.ms += t.ms;
    p.dispatches += t.count;
    p.entries.set(entry, (p.entries.get(entry) ?? 0) + t.ms);
    byPhase.set(phase, p);
  }
  return [...byPhase].map(([phase, p]) => ({
    phase, ms: p.ms, dispatches: p.dispatches,
    top: [...p.entries].sort((a, b) => b[1] - a[1]).slice(0, 3).map(([e, ms]) => `${e} ${fmt(ms, 0)}`).join(', '),
  })).sort((a, b) => b.ms - a.ms);
}

// ---- the workloads -------------------------------------------------------------------------------
async function trainStep(): Promise<number> {
  return tidy(async () => {
    const { loss } = model.forward(pixels, { labels: target });
    loss!.backward();
    opt.step();
    opt.zeroGrad();
    return loss!.item(); // the read-back waits for the whole step, as a trainer logging the loss does
  });
}

async function inferStep(): Promise<void> {
  await tidy(async () => {
    const { logits } = noGrad(() => model.forward(pixels));
    await logits.toArray();
  });
}

/** Wall time, plus the CPU time this process used (lavapipe's threads are ours): cores kept busy. */
async function timed(fn: () => Promise<unknown>): Promise<{ ms: number; value: unknown; cores: number }> {
  const cpu0 = process.cpuUsage();
  const start = performance.now();
  const value = await fn();
  const ms = performance.now() - start;
  const cpu = process.cpuUsage(cpu0);
  return { ms, value, cores: (cpu.user + cpu.system) / 1000 / ms };
}

const mem = (): VitMemory => {
  const s = device.memoryStats();
  return {
    bytesInUse: s.bytesInUse, bytesAllocated: s.bytesAllocated, buffersAllocated: s.buffersAllocated,
    textureBytes: scratchTextureBytes(device), liveTensors: Tensor.liveCount,
  };
};

// first step: pipelines compile on first use
const pipelinesBefore = device.pipelineCount;
const first = await timed(trainStep);
const firstStepS = first.ms / 1000;
log(`first training step: ${fmt(firstStepS, 2)} s (${device.pipelineCount - pipelinesBefore} pipelines compiled), loss ${fmt(first.value as number, 4)}`);
const second = await timed(trainStep);
const losses = [first.value as number, second.value as number];
const afterStep2 = mem();
log(`2nd training step: ${fmt(second.ms / 1000, 2)} s, loss ${fmt(second.value as number, 4)}`);

device.pool.resetPeak();
const dispatches0 = device.dispatchCount;
const trainMs: number[] = [];
const trainCores: number[] = [];
let lastLoss = NaN;
for (let i = 0; i < steps; i++) {
  const r = await timed(trainStep);
  trainMs.push(r.ms);
  trainCores.push(r.cores);
  lastLoss = r.value as number;
  losses.push(lastLoss);
  log(`  train step ${i + 3}: ${fmt(r.ms, 0)} ms, loss ${fmt(lastLoss, 4)}, ${fmt(r.cores, 2)} cores busy, ${mib(device.memoryStats().bytesInUse)} in use`);
}
const dispatchesPerStep = (device.dispatchCount - dispatches0) / steps;
const stats = device.memoryStats();
const peakInUse = stats.peakBytesInUse;
const afterLast = mem();
// the GPU holds the pool's buffers and the matmul's scratch textures (lavapipe's texture kernel)
const peakAllocated = stats.peakBytesAllocated + afterLast.textureBytes;

await inferStep();
await inferStep();
const inferMs: number[] = [];
const inferCores: number[] = [];
const dispatchesI0 = device.dispatchCount;
for (let i = 0; i < inferReps; i++) {
  const r = await timed(inferStep);
  inferMs.push(r.ms);
  inferCores.push(r.cores);
}
const dispatchesPerInfer = (device.dispatchCount - dispatchesI0) / inferReps;

const trainStepMs = median(trainMs);
const inferBatchMs = median(inferMs);
const trainImgS = B / (trainStepMs / 1000);
const inferImgS = B / (inferBatchMs / 1000);

// ---- profile: one more step of each with per-dispatch timestamps --------------------------------
let trainPhases: Phase[] = [];
let inferPhases: Phase[] = [];
let trainGpuMs = NaN, inferGpuMs = NaN, profiledTrainMs = NaN, profiledInferMs = NaN;
if (profile && device.canTime) {
  // label each dispatch with its phase, for the profiled steps only (the timed ones run unwrapped);
  // pack_operand dispatches wait for the product they feed, whose shape tells the phase
  const rawDispatch = device.dispatch;
  const packs: DispatchDesc[] = [];
  device.dispatch = (d: DispatchDesc) => {
    if (d.entry === 'pack_operand') { packs.push(d); return; }
    const phase = phaseOf(d);
    for (const p of [...packs.splice(0), d]) rawDispatch.call(device, { ...p, label: `${phase}|${p.label ?? `${p.shader.name}:${p.entry}`}` });
  };
  device.setProfiling(true);
  await device.takeTimings();
  profiledTrainMs = (await timed(trainStep)).ms;
  trainPhases = phases(await device.takeTimings());
  profiledInferMs = (await timed(inferStep)).ms;
  inferPhases = phases(await device.takeTimings());
  device.setProfiling(false);
  device.dispatch = rawDispatch;
  trainGpuMs = trainPhases.reduce((a, p) => a + p.ms, 0);
  inferGpuMs = inferPhases.reduce((a, p) => a + p.ms, 0);
}

// ---- napkin memory -------------------------------------------------------------------------------
// saved for backward per layer and image: h, ln1(h), q, k, v, context, h1, ln2(h1) [S, D]; fc1 out
// and GELU out [S, mlp]; the attention probabilities [H, S, S]; layernorm mean/rstd
const actPerLayer = S * (8 * D + 2 * M) + H * S * S + 4 * S;
const napkin = {
  weights: 4 * params,
  grads: 4 * params,
  adamw_moments: 8 * params,
  activations: 4 * B * (L * actPerLayer + T * 3 * patch * patch + 2 * S * D + 3 * image * image),
  total: 0,
};
napkin.total = napkin.weights + napkin.grads + napkin.adamw_moments + napkin.activations;

// ---- report ----------------------------------------------------------------------------------------
log(`\nViT ${label} on ${device.description}`);
log(`training:  ${fmt(trainStepMs, 0)} ms/step (median of ${steps}) = ${fmt(trainImgS, 2)} img/s, ` +
  `~${fmt((3 * forwardFlops * B) / trainStepMs / 1e6)} GFLOP/s useful, ${fmt(dispatchesPerStep, 0)} dispatches/step`);
log(`inference: ${fmt(inferBatchMs, 0)} ms/batch (median of ${inferReps}) = ${fmt(inferImgS, 2)} img/s, ` +
  `~${fmt((forwardFlops * B) / inferBatchMs / 1e6)} GFLOP/s useful, ${fmt(dispatchesPerInfer, 0)} dispatches/batch`);
const coresUsed = median(trainCores);
const cpus = (await import('node:os')).availableParallelism();
log(`CPU: this process kept ${fmt(coresUsed, 2)} of ${cpus} cores busy during training steps, ${fmt(median(inferCores), 2)} during inference` +
  (device.isCPU && coresUsed < 0.8 * cpus ? ' (the machine is shared: other processes took the rest, so these numbers are pessimistic)' : ''));
// On a CPU adapter all the work is this process's CPU time: spread over every core it estimates an idle machine.
const idleTrainImgS = B / ((trainStepMs * coresUsed) / cpus / 1000);
const idleInferImgS = B / ((inferBatchMs * median(inferCores)) / cpus / 1000);
if (device.isCPU) {
  log(`estimate for an idle machine (CPU time spread over ${cpus} cores): training ${fmt(idleTrainImgS, 2)} img/s, inference ${fmt(idleInferImgS, 2)} img/s`);
}
log(`first training step (incl. pipeline compilation): ${fmt(firstStepS, 2)} s; Device.create (incl. autotune): ${fmt(deviceCreateS, 2)} s`);

// All numbers of one profiled step: kernel times from its timestamps, the rest of its wall time is
// CPU-side (recording dispatches, submits, buffer copies, waiting for the read-back).
function phaseTable(ph: Phase[], wallMs: number, gpuMs: number): string {
  const rowsOut = ph.map((p) => [p.phase, fmt(p.ms, 0), fmt((100 * p.ms) / wallMs, 1), String(p.dispatches), p.top]);
  rowsOut.push(['CPU-side overhead (wall - GPU: recording, submits, copies, read-back)', fmt(wallMs - gpuMs, 0), fmt((100 * (wallMs - gpuMs)) / wallMs, 1), '', '']);
  rowsOut.push(['total (wall time of the profiled step)', fmt(wallMs, 0), '100.0', String(ph.reduce((a, p) => a + p.dispatches, 0)), '']);
  return table(['phase', 'ms', '%', 'dispatches', 'largest kernels (ms)'], rowsOut);
}
if (trainPhases.length) {
  log(`\ntraining step by phase (one step with per-dispatch GPU timestamps; ${fmt(profiledTrainMs, 0)} ms wall with profiling on, ${fmt(trainStepMs, 0)} ms off):`);
  log(phaseTable(trainPhases, profiledTrainMs, trainGpuMs));
  log(`\ninference by phase (${fmt(profiledInferMs, 0)} ms wall with profiling on, ${fmt(inferBatchMs, 0)} ms off):`);
  log(phaseTable(inferPhases, profiledInferMs, inferGpuMs));
} else if (profile) {
  log('\n(no phase breakdown: this adapter has no timestamp-query)');
}

log(`\nGPU memory: peak ${mib(peakInUse)} in use, ${mib(peakAllocated)} allocated (steady-state steps): the pool's ` +
  `${mib(stats.peakBytesAllocated)} and ${mib(afterLast.textureBytes)} of matmul scratch textures`);
log(`napkin: weights ${mib(napkin.weights)} + grads ${mib(napkin.grads)} + AdamW moments ${mib(napkin.adamw_moments)} + ` +
  `activations ${mib(napkin.activations)} = ${mib(napkin.total)}; peak in use / napkin = ${fmt(peakInUse / napkin.total, 2)}`);
const failures = vitRunFailures(losses, afterStep2, afterLast);
const memoryEqual = !failures.some((f) => f.startsWith('memory'));
const memLine = (m: VitMemory) =>
  `${mib(m.bytesInUse)} in use, ${mib(m.bytesAllocated)} allocated, ${mib(m.textureBytes)} textures, ${m.liveTensors} tensors`;
log(`memory after step 2: ${memLine(afterStep2)}; after step ${steps + 2}: ${memLine(afterLast)} -> ${memoryEqual ? 'equal' : 'DIFFERENT'}`);
for (const f of failures) log(`FAIL: ${f}`);

if (json) {
  const phaseJson = (ph: Phase[], wallMs: number, gpuMs: number) => ph.length
    ? { ...Object.fromEntries(ph.map((p) => [p.phase, Number(p.ms.toFixed(2))])), 'CPU-side overhead': Number((wallMs - gpuMs).toFixed(2)), 'profiled wall': Number(wallMs.toFixed(2)) }
    : {};
  console.log(JSON.stringify({
    config: { ...cfg, label, params },
    adapter: adapterInfo(device),
    autotune: tuned ? { variant: tuned.matmulVariant, source: tuned.source, ms: tuned.ms } : null,
    kernel_variants: kernelVariants(device),
    attention_autotune: tuned?.attention ? { short: tuned.attention.attentionVariant, long: tuned.attention.attentionLongVariant, ms: tuned.attention.ms, ms_long: tuned.attention.msLong } : null,
    train_img_s: trainImgS,
    infer_img_s: inferImgS,
    first_step_s: firstStepS,
    device_create_s: deviceCreateS,
    train_step_ms: trainStepMs,
    infer_batch_ms: inferBatchMs,
    train_steps_ms: trainMs,
    infer_ms: inferMs,
    fwd_gflop_per_img: forwardFlops / 1e9,
    dispatches_per_step: dispatchesPerStep,
    cpu_cores_busy_train: coresUsed,
    cpu_cores_busy_infer: median(inferCores),
    cpu_count: cpus,
    idle_estimate_train_img_s: device.isCPU ? idleTrainImgS : null,
    idle_estimate_infer_img_s: device.isCPU ? idleInferImgS : null,
    peak_gpu_bytes: peakAllocated,
    peak_in_use_bytes: peakInUse,
    napkin_bytes: napkin,
    memory_after_step2: afterStep2,
    memory_after_last: afterLast,
    memory_equal: memoryEqual,
    train_phases_ms: phaseJson(trainPhases, profiledTrainMs, trainGpuMs),
    train_gpu_ms: trainGpuMs,
    infer_phases_ms: phaseJson(inferPhases, profiledInferMs, inferGpuMs),
    infer_gpu_ms: inferGpuMs,
    last_loss: lastLoss,
    failures,
  }));
}
opt.dispose();
model.dispose();
pixels.dispose();
target.dispose();
device.destroy();
process.exitCode = failures.length ? 1 : 0;
